"""An OpenAI-compatible provider for the benchmarks that takes a fixed time per call.

    python benchmarks/fake_provider.py --port 9100 --delay 2.0

Every call (chat or completion, streamed or not) waits `--delay` seconds, then answers at once with a
plausible text chosen from the prompt: a blog post, a short social post, an image description. It is
not the test suite's scripted server: no rules, no failures, no request log — just a fixed cost per
call, so a benchmark measures Pressroom and not the model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

BLOG = (
    "# Rooftop solar for every home\n\n"
    "Solar panels on the roof turn sunlight into electricity [1]. Prices fell sharply over a decade, "
    "and a home battery keeps the surplus for the evening.\n\n"
    "## Why now\n\nCheaper panels, better inverters and clear rules make it the right moment for most "
    "households to look at their roof again."
)
SOCIAL = "Rooftop solar is finally for everyone: cheaper panels, smarter batteries. #solar {link}"
IMAGE = "A sunlit suburban roof covered in solar panels under a clear blue sky"


def answer_for(prompt: str) -> str:
    if "Describe an illustration" in prompt:
        return IMAGE
    if "post promoting this blog post" in prompt or "X thread" in prompt:
        return SOCIAL
    return BLOG


def _prompt(body: dict[str, Any]) -> str:
    if "messages" in body:
        return "\n".join(str(m.get("content", "")) for m in body["messages"])
    return str(body.get("prompt", ""))


def make_app(delay: float) -> Starlette:
    served = [0]  # completions answered, read by the benchmarks at /v1/calls

    async def generate(request: Request) -> Response:
        served[0] += 1
        body = await request.json()
        chat = request.url.path.endswith("/chat/completions")
        text = answer_for(_prompt(body))
        await asyncio.sleep(delay)
        usage = {
            "prompt_tokens": 200,
            "completion_tokens": len(text) // 4,
            "total_tokens": 200 + len(text) // 4,
        }
        ident, created, model = f"fake-{uuid.uuid4().hex[:12]}", int(time.time()), body.get("model", "fake")
        if not body.get("stream"):
            choice = (
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                if chat
                else {"index": 0, "text": text, "finish_reason": "stop"}
            )
            kind = "chat.completion" if chat else "text_completion"
            return JSONResponse(
                {
                    "id": ident,
                    "object": kind,
                    "created": created,
                    "model": model,
                    "choices": [choice],
                    "usage": usage,
                }
            )

        async def chunks() -> AsyncIterator[str]:
            kind = "chat.completion.chunk" if chat else "text_completion"
            base = {"id": ident, "object": kind, "created": created, "model": model}
            piece: dict[str, object] = {"delta": {"content": text}} if chat else {"text": text}
            yield f"data: {json.dumps({**base, 'choices': [{'index': 0, **piece, 'finish_reason': None}]})}\n\n"
            end: dict[str, object] = {"delta": {}} if chat else {"text": ""}
            yield f"data: {json.dumps({**base, 'choices': [{'index': 0, **end, 'finish_reason': 'stop'}]})}\n\n"
            yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(chunks(), media_type="text/event-stream")

    async def models(_: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

    async def calls(_: Request) -> Response:
        return JSONResponse({"calls": served[0]})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", generate, methods=["POST"]),
            Route("/v1/completions", generate, methods=["POST"]),
            Route("/v1/models", models),
            Route("/v1/calls", calls),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds every call takes")
    args = parser.parse_args()
    uvicorn.run(
        make_app(args.delay), host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
        backlog=4096, timeout_keep_alive=60,
    )  # fmt: skip


if __name__ == "__main__":
    main()
