"""Pipeline latency on the embedded stack: how long a person waits, stage by stage.

Starts the whole embedded stack (NATS, PostgreSQL, SeaweedFS, the local Gemma 3 270M model and all six
services) in a temporary home on free ports, runs jobs over the gateway WebSocket, and writes the
timings to benchmarks/results/pipeline_latency.json (and prints a table).

    .venv/bin/python benchmarks/pipeline_latency.py --jobs 3 --concurrency 1 --replicas writer=1

Measured from the `start` frame: accepted, first progress, first blog token, blog.completed,
job.completed; plus the blog's streaming rate (characters per second of deltas).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import websockets
from rich.console import Console
from rich.table import Table

from pressroom_devstack.cli import parse_replicas
from pressroom_devstack.config import StackConfig
from pressroom_devstack.ports import free_port
from pressroom_devstack.stack import Stack

RESULTS = Path(__file__).parent / "results" / "pipeline_latency.json"
TOPICS = [
    "How solar panels help households save energy",
    "Why remote work helps small teams",
    "What open-source licences mean for companies",
]
MARKS = ("accepted", "first_progress", "first_token", "blog_completed", "job_completed")


async def timed_job(gateway: str, topic: str) -> dict[str, Any]:
    marks: dict[str, float] = {}
    chars = 0
    start = time.perf_counter()
    async with websockets.connect(gateway.replace("http", "ws", 1) + "/v1/ws", max_size=None) as ws:
        request = {"topic": topic, "length": "short", "platforms": ["linkedin", "x"]}
        await ws.send(json.dumps({"type": "start", "request": request}))
        while True:
            frame = json.loads(await ws.recv())
            now = time.perf_counter() - start
            if frame["type"] == "accepted":
                marks["accepted"] = now
            elif frame["type"] == "delta":
                marks.setdefault("first_token", now)
                chars += len(frame["text"])
            elif frame["type"] == "event":
                kind = frame["event"]["type"]
                if kind == "stage.progress":
                    marks.setdefault("first_progress", now)
                elif kind == "blog.completed":
                    marks["blog_completed"] = now
                elif kind in ("job.completed", "job.failed"):
                    marks["job_completed"] = now
                    marks["failed"] = kind == "job.failed"
                    break
    streaming = marks.get("blog_completed", 0) - marks.get("first_token", 0)
    marks["blog_chars_per_second"] = chars / streaming if streaming > 0 else 0.0
    return marks


async def run_jobs(gateway: str, jobs: int, concurrency: int) -> list[dict[str, Any]]:
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int) -> dict[str, Any]:
        async with gate:
            return await timed_job(gateway, TOPICS[n % len(TOPICS)])

    return await asyncio.gather(*(one(n) for n in range(jobs)))


def summarise(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    summary = {}
    for mark in (*MARKS, "blog_chars_per_second"):
        values = [r[mark] for r in results if mark in r]
        if values:
            summary[mark] = {"median": round(statistics.median(values), 3), "max": round(max(values), 3)}
    return summary


def main(
    jobs: Annotated[int, typer.Option(help="jobs to run")] = 3,
    concurrency: Annotated[int, typer.Option(help="jobs in flight at once")] = 1,
    replicas: Annotated[list[str] | None, typer.Option(help="NAME=N, e.g. writer=2")] = None,
) -> None:
    console = Console()
    counts = parse_replicas(replicas or [])
    with tempfile.TemporaryDirectory(prefix="pressroom-bench-") as home:
        environ = {
            k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "S3_", "NATS_", "DATABASE_"))
        }
        environ |= {"PRESSROOM_HOME": home, "PRESSROOM_GATEWAY_PORT": str(free_port())}
        stack = Stack(StackConfig.from_env(environ))
        try:
            info = stack.start(replicas=counts)
            wall = time.perf_counter()
            results = asyncio.run(run_jobs(info.gateway_url or "", jobs, concurrency))
            wall = time.perf_counter() - wall
        finally:
            stack.stop()
    seconds_from_start = summarise(results)
    record = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "model": "gemma-3-270m (Q4_K_M, llama.cpp via xllamacpp)",
        "jobs": jobs,
        "concurrency": concurrency,
        "replicas": counts,
        "wall_seconds": round(wall, 2),
        "jobs_per_minute": round(60 * jobs / wall, 2),
        "failed": sum(1 for r in results if r.get("failed")),
        "seconds_from_start": seconds_from_start,
        "runs": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(record, indent=2) + "\n")
    table = Table(title=f"{jobs} jobs, concurrency {concurrency}, {record['jobs_per_minute']} jobs/min")
    table.add_column("seconds from start")
    table.add_column("median")
    table.add_column("max")
    for mark, values in seconds_from_start.items():
        table.add_row(mark, str(values["median"]), str(values["max"]))
    console.print(table)
    console.print(f"written to {RESULTS}")


if __name__ == "__main__":
    typer.run(main)
