"""Serves a GGUF model over llama.cpp's OpenAI-compatible HTTP API (xllamacpp), until SIGTERM/SIGINT.

Run as its own process (`python -m pressroom_devstack.model_server --model PATH --port N`) so that a
native crash or a stuck generation cannot take the caller down and stop() is a plain signal.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="path to the .gguf file")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--alias", default="gemma-3-270m", help="model id reported by /v1/models")
    parser.add_argument("--ctx", type=int, default=4096, help="context tokens per parallel slot")
    parser.add_argument("--parallel", type=int, default=2, help="requests served concurrently")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.model_alias = {args.alias}
    params.hostnames = [args.host]
    params.port = args.port
    params.n_parallel = args.parallel
    params.n_ctx = args.ctx * args.parallel  # llama.cpp splits the context between the slots
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.offline = True  # never reach out to Hugging Face
    server = xllamacpp.Server(params)  # serves in background threads

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"model server ready on http://{args.host}:{args.port}", flush=True)
    stop.wait()
    del server
    sys.stdout.flush()
    # llama.cpp's native threads do not join on interpreter shutdown; leave at once.
    os._exit(0)


if __name__ == "__main__":
    main()
