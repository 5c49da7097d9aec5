"""Fan-out: N WebSocket clients on one gateway process watching K jobs, against a raw broadcast.

A driver publishes each job's events on NATS at a steady rate (stored `stage.progress` events through
JetStream and live deltas on core NATS, alternating; no model involved) and finally `job.completed`. The
clients, spread over worker processes, subscribe to their job (client i watches job i mod K) and stop at
its end. The same run then repeats against the baseline: a plain `websockets` server that subscribes to
the same subjects on core NATS and `websockets.broadcast`s the same frames to the same number of clients
(no auth, no JetStream, no per-client queue: the floor for this machine).

Reported for both: delivered frames/s (frames received by all clients from the first publish to the
last frame), live delivery latency p50/p99 (publish to receipt, same clock), clients that saw their job
end; for the gateway also its peak RSS and the NATS consumers it created. Prints the gateway ÷ baseline
ratios and writes benchmarks/results/fanout.json.

    .venv/bin/python benchmarks/fanout.py                  # 1,000 clients, 10 jobs (about a minute)
    .venv/bin/python benchmarks/fanout.py --clients 10000 --jobs 100 --workers 4 --seconds 20 --rate 2 \
        --output benchmarks/results/fanout-10k.json
    .venv/bin/python benchmarks/fanout.py --clients 10000 --jobs 100 --workers 4 --seconds 20 --rate 2 --spread \
        --output benchmarks/results/fanout-10k-spread.json   # each job at its own phase, not all at once
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import nats
import typer
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, broadcast, serve

from pressroom_contracts import subjects
from pressroom_contracts.events import (
    JobCompleted,
    JobCompletedEvent,
    JobRequested,
    JobRequestedEvent,
    Producer,
    Stage,
    StageProgress,
    StageProgressEvent,
    encode_event,
)
from pressroom_contracts.ids import new_job_id
from pressroom_contracts.jobs import JobRequest
from pressroom_contracts.protocol import DeltaMessage
from pressroom_devstack.nats import NatsServer
from pressroom_devstack.ports import free_port
from pressroom_runtime.apikeys import create_key
from pressroom_runtime.provisioning import provision

RESULTS = Path(__file__).parent / "results" / "fanout.json"
PRODUCER = Producer(service="bench-driver", replica="0")
CONNECT_CONCURRENCY = 200  # handshakes in flight per worker


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---- clients (worker processes) ------------------------------------------------------------------------


@dataclass
class WorkerResult:
    clients: int = 0
    connected: int = 0
    finished: int = 0
    frames: int = 0
    first_frame: float = 0.0
    last_frame: float = 0.0
    latencies: list[float] = field(default_factory=list)
    event_latencies: list[float] = field(default_factory=list)  # stored events only (through JetStream)
    errors: list[str] = field(default_factory=list)
    cpu_busy: float = 0.0  # CPU seconds ÷ wall seconds while measuring: near 1.0, the generator is the limit


def _stamp(frame: dict[str, Any]) -> float | None:
    """The driver's publish time carried in a frame ("t=<epoch seconds>")."""
    if frame.get("type") == "delta":
        text = frame.get("text", "")
    elif frame.get("type") == "event":
        text = frame["event"].get("data", {}).get("message", "")
    else:
        return None
    # A watcher that joins mid-stream is sent the text so far in one delta: its newest stamp counts.
    _, found, stamp = text.rpartition("t=") if isinstance(text, str) else ("", "", "")
    return float(stamp) if found else None


async def _client(url: str, headers: dict[str, str], job_id: str, ready: list[int], result: WorkerResult,
                  gate: asyncio.Semaphore, go: asyncio.Event) -> None:  # fmt: skip
    try:
        async with gate:
            # No client-side keepalive: the load generator shares the CPU; the server pings anyway.
            ws = await connect(
                url,
                additional_headers=headers,
                compression=None,
                max_size=None,
                open_timeout=120,
                ping_interval=None,
            )
        async with ws:
            await ws.send(json.dumps({"type": "subscribe", "job_id": job_id}))
            await ws.recv()  # subscribed: the gateway's replay of job.requested, the baseline's ack
            result.connected += 1
            ready[0] += 1
            while True:
                frame = json.loads(await ws.recv())
                now = time.time()
                if not go.is_set():
                    continue  # the replay of what came before the measurement
                result.frames += 1
                result.first_frame = min(result.first_frame or now, now)
                result.last_frame = max(result.last_frame, now)
                stamp = _stamp(frame)
                if stamp is not None:
                    result.latencies.append(now - stamp)
                    if frame.get("type") == "event":
                        result.event_latencies.append(now - stamp)
                if frame.get("type") == "event" and frame["event"].get("type") == "job.completed":
                    result.finished += 1
                    return
    except Exception as exc:
        result.errors.append(f"{type(exc).__name__}: {exc}"[:200])


async def _worker_main(url: str, headers: dict[str, str], jobs: list[str], indexes: list[int], conn: Any,
                       deadline: float) -> None:  # fmt: skip
    raise_fd_limit()
    result = WorkerResult(clients=len(indexes))
    ready = [0]
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    go = asyncio.Event()
    tasks = [
        asyncio.create_task(_client(url, headers, jobs[i % len(jobs)], ready, result, gate, go))
        for i in indexes
    ]
    loop = asyncio.get_running_loop()
    while ready[0] + len(result.errors) < len(indexes):  # noqa: ASYNC110 (counted by many tasks)
        await asyncio.sleep(0.1)
    conn.send(("ready", ready[0]))
    await loop.run_in_executor(None, conn.recv)  # "go"
    go.set()
    conn.send(("going", 0))  # the driver waits for this: no frame of the measurement passes for a replay
    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.wait(tasks, timeout=max(1.0, deadline - time.time()))
    result.cpu_busy = round((time.process_time() - cpu) / max(1e-9, time.monotonic() - wall), 2)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    conn.send(("done", asdict(result)))


def worker(
    url: str, headers: dict[str, str], jobs: list[str], indexes: list[int], conn: Any, deadline: float
) -> None:
    asyncio.run(_worker_main(url, headers, jobs, indexes, conn, deadline))


# ---- the baseline server (its own process) --------------------------------------------------------------


async def _baseline_main(nats_url: str, port: int, started: Any) -> None:
    raise_fd_limit()
    watchers: dict[str, set[ServerConnection]] = {}
    nc = await nats.connect(nats_url)

    async def on_content(msg: Any) -> None:
        job_id, _ = subjects.parse_content(msg.subject)
        frame = f'{{"type":"event","job_id":"{job_id}","seq":0,"event":{msg.data.decode()}}}'
        broadcast(watchers.get(job_id, ()), frame)

    async def on_live(msg: Any) -> None:
        job_id, stage = subjects.parse_live(msg.subject)
        delta = DeltaMessage.model_validate_json(msg.data)
        frame = json.dumps({"type": "delta", "job_id": job_id, "stage": stage, "offset": delta.offset,
                            "text": delta.text})  # fmt: skip
        broadcast(watchers.get(job_id, ()), frame)

    await nc.subscribe(subjects.all_content(), cb=on_content)
    await nc.subscribe(subjects.all_live(), cb=on_live)

    async def handler(ws: ServerConnection) -> None:
        job_id = json.loads(await ws.recv())["job_id"]
        watchers.setdefault(job_id, set()).add(ws)
        await ws.send('{"type":"subscribed"}')
        try:
            await ws.wait_closed()
        finally:
            watchers[job_id].discard(ws)

    async with serve(handler, "127.0.0.1", port, compression=None, max_size=None):
        started.set()
        await asyncio.Future()


def baseline_server(nats_url: str, port: int, started: Any) -> None:
    asyncio.run(_baseline_main(nats_url, port, started))


# ---- the driver and one phase --------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def rss_mb(pid: int) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            name, value, _unit = line.split()
            values[name.rstrip(":")] = int(value) / 1024
    return {"rss_mb": values.get("VmRSS", 0.0), "peak_rss_mb": values.get("VmHWM", 0.0)}


async def drive(nats_url: str, jobs: list[str], seconds: float, rate: float, spread: bool) -> float:
    """Publishes each job's frames at `rate` per second for `seconds` (events and deltas alternating),
    then job.completed; returns when the first publish happened. In unison (the default) every job
    publishes at the same instant, a burst of jobs x watchers frames; `spread` gives job i a phase of
    i / (jobs x rate) seconds, as independent jobs would have."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    start = time.time()
    ticks = int(seconds * rate)
    offsets = dict.fromkeys(jobs, 0)
    phase = {job_id: (i / (len(jobs) * rate) if spread else 0.0) for i, job_id in enumerate(jobs)}
    schedule = sorted((tick / rate + phase[job_id], tick, job_id) for tick in range(ticks) for job_id in jobs)
    for at, tick, job_id in schedule:
        await asyncio.sleep(max(0.0, start + at - time.time()))
        stamp = f"t={time.time():.6f}"
        if tick % 2 == 0:
            event = StageProgressEvent(job_id=job_id, producer=PRODUCER,
                                       data=StageProgress(stage=Stage.blog, step=tick + 1, message=stamp))  # fmt: skip
            await js.publish(subjects.content(job_id, event.type), encode_event(event),
                             headers={"Nats-Msg-Id": event.dedup_key()})  # fmt: skip
        else:
            delta = DeltaMessage(offset=offsets[job_id], text=stamp)
            offsets[job_id] += len(stamp)
            await nc.publish(subjects.live(job_id, "blog"), delta.model_dump_json().encode())
    for job_id in jobs:
        done = JobCompletedEvent(
            job_id=job_id, producer=PRODUCER, data=JobCompleted(blog_title="t", platforms=[])
        )
        await js.publish(
            subjects.content(job_id, done.type), encode_event(done), headers={"Nats-Msg-Id": done.dedup_key()}
        )
    await nc.drain()
    return start


async def count_consumers(nats_url: str) -> int:
    nc = await nats.connect(nats_url)
    try:
        infos = await nc.jetstream().consumers_info(subjects.STREAM)
        return sum(1 for info in infos if not info.config.durable_name)  # ephemeral: not provisioned ones
    finally:
        await nc.close()


async def new_jobs(nats_url: str, count: int, owner: str) -> list[str]:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    jobs = []
    for _ in range(count):
        event = JobRequestedEvent(job_id=new_job_id(), producer=PRODUCER,
                                  data=JobRequested(request=JobRequest(topic="Fan-out benchmark"), owner=owner))  # fmt: skip
        await js.publish(subjects.content(event.job_id, event.type), encode_event(event))
        jobs.append(event.job_id)
    await nc.close()
    return jobs


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def phase(name: str, url: str, headers: dict[str, str], nats_url: str, args: dict[str, Any],
                target_pid: int) -> dict[str, Any]:  # fmt: skip
    jobs = await new_jobs(nats_url, args["jobs"], args["owner"])
    deadline = time.time() + 600
    ctx = mp.get_context("spawn")
    pipes, procs = [], []
    indexes = list(range(args["clients"]))
    for w in range(args["workers"]):
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=worker, args=(url, headers, jobs, indexes[w :: args["workers"]], child, deadline)
        )
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    loop = asyncio.get_running_loop()
    t0 = time.time()
    connected = sum([(await loop.run_in_executor(None, p.recv))[1] for p in pipes])
    connect_seconds = time.time() - t0
    consumers = await count_consumers(nats_url) if name == "gateway" else None
    load_before = load_average()
    cpu_before, wall_before = cpu_seconds(target_pid), time.monotonic()
    profiler = profile(target_pid, args["profile"]) if args.get("profile") and name == "gateway" else None
    for p in pipes:
        p.send("go")
    for p in pipes:
        await loop.run_in_executor(None, p.recv)  # ("going", 0)
    start = await drive(nats_url, jobs, args["seconds"], args["rate"], args["spread"])
    results = [(await loop.run_in_executor(None, p.recv))[1] for p in pipes]
    server_busy = (cpu_seconds(target_pid) - cpu_before) / max(1e-9, time.monotonic() - wall_before)
    memory = rss_mb(target_pid) if name == "gateway" else {}
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
        profiler.wait(timeout=60)
    for proc in procs:
        proc.join(timeout=30)
    frames = sum(r["frames"] for r in results)
    last = max((r["last_frame"] for r in results), default=start)
    latencies = [x for r in results for x in r["latencies"]]
    event_latencies = [x for r in results for x in r["event_latencies"]]
    errors = [e for r in results for e in r["errors"]]
    summary = {
        "clients": args["clients"],
        "jobs": args["jobs"],
        "connected": connected,
        "connect_seconds": round(connect_seconds, 2),
        "saw_job_end": sum(r["finished"] for r in results),
        "frames_delivered": frames,
        "frames_expected": args["clients"] * (int(args["seconds"] * args["rate"]) + 1),
        "frames_per_second": round(frames / max(1e-9, last - start), 1),
        "latency_p50_ms": round(1000 * (percentile(latencies, 0.5) or 0), 1),
        "latency_p99_ms": round(1000 * (percentile(latencies, 0.99) or 0), 1),
        # Stored events alone (the gateway reads them through a JetStream consumer, the raw server off
        # core NATS); the rest are live deltas, core NATS for both.
        "event_latency_p50_ms": round(1000 * (percentile(event_latencies, 0.5) or 0), 1),
        "event_latency_p99_ms": round(1000 * (percentile(event_latencies, 0.99) or 0), 1),
        "errors": len(errors),
        "first_errors": sorted(set(errors))[:5],
        # CPU seconds per wall second while measuring: the server, and each client process (a client
        # process near 1.0 means the load generator, not the server, set the pace).
        "server_cpu_busy": round(server_busy, 2),
        "client_cpu_busy": [r["cpu_busy"] for r in results],
        "load_average": {"before": load_before, "after": load_average()},
        **memory,
    }
    if consumers is not None:
        summary["nats_consumers"] = consumers
    print(f"{name}: {json.dumps(summary)}", flush=True)
    return summary


def profile(pid: int, output: str) -> subprocess.Popen[bytes]:
    """py-spy sampling the gateway while it is measured (a speedscope file: open it in speedscope.app,
    or read it with `py-spy`'s own viewer); stopped with SIGINT, which makes it write the file."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    return subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--rate", "200", "--format", "speedscope", "-o", output],
        stdout=subprocess.DEVNULL,
    )


async def wait_healthy(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(url + "/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not become healthy")


async def run(args: dict[str, Any]) -> dict[str, Any]:
    raise_fd_limit()
    home = Path(tempfile.mkdtemp(prefix="pressroom-fanout-"))
    server = NatsServer(home / "nats", home / "nats.log")
    nats_url = server.start()
    gateway: subprocess.Popen[bytes] | None = None
    baseline: Any = None
    try:
        await provision(nats_url)
        nc = await nats.connect(nats_url)
        token, record = await create_key(nc, "fanout benchmark")
        await nc.close()
        args["owner"] = record.client_id
        headers = {"Authorization": f"Bearer {token}"}

        port = free_port()
        env = {**os.environ, "NATS_URL": nats_url, "PRESSROOM_GATEWAY_PORT": str(port),
               "PRESSROOM_LOG_LEVEL": "WARNING", "PRESSROOM_GATEWAY_MAX_CONNECTIONS": "1000000",
               "PRESSROOM_GATEWAY_CONNECT_RATE": "1000000/minute", "PRESSROOM_REPLICA": "bench",
               "PRESSROOM_GATEWAY_WS": args["ws"]}  # fmt: skip
        gateway = subprocess.Popen(  # noqa: ASYNC220 (started once, before the measurement)
            [sys.executable, "-m", "pressroom_gateway"], env=env, preexec_fn=raise_fd_limit
        )
        await wait_healthy(f"http://127.0.0.1:{port}")
        result_gateway = await phase(
            "gateway", f"ws://127.0.0.1:{port}/v1/ws", headers, nats_url, args, gateway.pid
        )
        gateway.terminate()  # closing 10,000 connections gracefully takes a while
        try:
            gateway.wait(timeout=180)
        except subprocess.TimeoutExpired:
            gateway.kill()
            gateway.wait()
        gateway = None

        port = free_port()
        ctx = mp.get_context("spawn")
        started = ctx.Event()
        baseline = ctx.Process(target=baseline_server, args=(nats_url, port, started))
        baseline.start()
        started.wait(30)
        result_baseline = await phase("baseline", f"ws://127.0.0.1:{port}", {}, nats_url, args, baseline.pid)
    finally:
        if gateway is not None:
            gateway.terminate()
        if baseline is not None:
            baseline.terminate()
            baseline.join(10)
        server.stop()
        shutil.rmtree(home, ignore_errors=True)

    ratio = {
        "frames_per_second": round(result_gateway["frames_per_second"] / max(1e-9, result_baseline["frames_per_second"]), 3),
        "latency_p99": round(result_gateway["latency_p99_ms"] / max(1e-9, result_baseline["latency_p99_ms"]), 2),
    }  # fmt: skip
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "settings": {k: v for k, v in args.items() if k != "owner"},
        "gateway": result_gateway,
        "baseline": result_baseline,
        "ratio_gateway_to_baseline": ratio,
        "targets": {
            "every_client_saw_its_job_end": result_gateway["saw_job_end"] == args["clients"],
            "p99_at_most_250_ms": result_gateway["latency_p99_ms"] <= 250,
            "frames_per_second_at_least_half_the_baseline": ratio["frames_per_second"] >= 0.5,
            "rss_at_most_1_gb": result_gateway.get("peak_rss_mb", 0) <= 1024,
            "consumers_at_most_jobs": result_gateway.get("nats_consumers", 0) <= args["jobs"],
        },
    }


def main(
    clients: Annotated[int, typer.Option(help="WebSocket clients.")] = 1000,
    jobs: Annotated[int, typer.Option(help="Jobs they watch (client i watches job i mod jobs).")] = 10,
    seconds: Annotated[float, typer.Option(help="How long the driver publishes.")] = 20.0,
    rate: Annotated[float, typer.Option(help="Frames per second per job (events and deltas).")] = 4.0,
    spread: Annotated[bool, typer.Option(help="Jobs publish at spread phases, not all at once.")] = False,
    workers: Annotated[int, typer.Option(help="Client processes.")] = 2,
    output: Annotated[Path, typer.Option(help="Where the results go.")] = RESULTS,
    ws: Annotated[str, typer.Option(help="uvicorn's WebSocket implementation for the gateway.")] = "auto",
    profile: Annotated[str, typer.Option(help="Write a py-spy profile of the gateway here.")] = "",
) -> None:
    args = {"clients": clients, "jobs": jobs, "seconds": seconds, "rate": rate, "spread": spread,
            "workers": workers, "ws": ws, "profile": profile}  # fmt: skip
    report = asyncio.run(run(args))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"ratio_gateway_to_baseline": report["ratio_gateway_to_baseline"],
                      "targets": report["targets"]}, indent=2))  # fmt: skip
    print(f"wrote {output}")


if __name__ == "__main__":
    typer.run(main)
