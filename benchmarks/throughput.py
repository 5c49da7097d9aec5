"""Throughput: jobs per second with an instant provider, with and without an image, one replica of each
service; latency percentiles; jobs lost (must be 0); and the raw floor of the same run.

    .venv/bin/python benchmarks/throughput.py --seconds 60 --window 50

Phases, on one stack: single jobs one at a time (their p50 is "a single job's latency"); the floor — what
one job's work costs without Pressroom around it: 5 JetStream hops (publish with ack, then delivery),
5 PostgreSQL commits and as many provider calls over HTTP as a single job made (counted by the fake
provider), one after the other; then, per variant, a
sustained load that keeps `--window` jobs unfinished for `--seconds`, with the CPU every process of the
run (load generator included) spent per job meanwhile. Prints the single job's p50 ÷ the floor's p50
(target: within 5x) and jobs/s (target: ≥ 100 for 60 s without image, 0 lost).
Writes benchmarks/results/throughput.json.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import httpx
import nats
import typer
from harness import (
    JobDriver,
    Run,
    cpu_per_job,
    cpu_seconds,
    embedded_stack,
    outcomes,
    percentiles,
    write_result,
)
from nats.js.api import StreamConfig

from pressroom_contracts.jobs import JobRequest

TOPIC = "How rooftop solar helps households"
HOPS, COMMITS = 5, 5


def request(image: bool) -> JobRequest:
    return JobRequest(topic=TOPIC, length="short", platforms=["linkedin", "x"], image=image)


async def provider_calls(base_url: str) -> int:
    """Completions the fake provider has answered so far."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        return int((await http.get("/calls")).json()["calls"])


async def floor(nats_url: str, database_url: str, base_url: str, calls: int, repeat: int) -> list[float]:
    nc = await nats.connect(nats_url)
    db = await asyncpg.connect(database_url)
    http = httpx.AsyncClient(base_url=base_url, timeout=30)
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="BENCHFLOOR", subjects=["benchfloor.>"]))
        sub = await js.subscribe("benchfloor.hop", ordered_consumer=True)
        await db.execute("CREATE TEMP TABLE floor (id serial PRIMARY KEY, body jsonb)")
        body = {"model": "fake-model", "messages": [{"role": "user", "content": "blog post"}], "stream": True}
        seconds = []
        for _ in range(repeat):
            began = time.perf_counter()
            for _ in range(HOPS):
                await js.publish("benchfloor.hop", b'{"type": "hop"}' * 40)
                await sub.next_msg(timeout=10)
            for _ in range(COMMITS):
                async with db.transaction():
                    await db.execute("INSERT INTO floor (body) VALUES ($1::jsonb)", '{"event": "x"}')
            for _ in range(calls):
                async with http.stream("POST", "/chat/completions", json=body) as response:
                    async for _ in response.aiter_bytes():
                        pass
            seconds.append(time.perf_counter() - began)
        await js.delete_stream("BENCHFLOOR")
        return seconds
    finally:
        await http.aclose()
        await db.close()
        await nc.close()


async def sustained(
    driver: JobDriver, home: str, image: bool, seconds: float, window: int, timeout: float
) -> dict[str, Any]:
    """Keeps `window` jobs unfinished for `seconds`; jobs/s counts those that ended inside that time."""
    runs: list[Run] = []
    began = time.perf_counter()
    stop_at = began + seconds
    cpu_before = cpu_seconds(home)

    async def lane() -> None:
        while time.perf_counter() < stop_at:
            run = await driver.start(request(image))
            runs.append(run)
            await driver.finish(run, timeout)

    async def cpu_at_stop() -> dict[str, float]:
        await asyncio.sleep(stop_at - time.perf_counter())
        return cpu_seconds(home)

    cpu_after, *_ = await asyncio.gather(cpu_at_stop(), *[lane() for _ in range(window)])
    done_in_time = [r for r in runs if r.ended is not None and r.ended <= stop_at]
    return {
        "image": image,
        "seconds": seconds,
        "window": window,
        "started": len(runs),
        "jobs_per_second": round(len(done_in_time) / seconds, 2),
        "latency_seconds": percentiles([r.seconds for r in runs if r.ended]),
        "outcomes": outcomes(runs),
        # Where the time of the two shared cores went: every process of the run, load generator included.
        "cpu_ms_per_job": cpu_per_job(cpu_before, cpu_after, len(done_in_time)),
    }


async def measure(info: Any, seconds: float, window: int, single: int, timeout: float) -> dict[str, Any]:
    async with JobDriver(info.nats_url) as driver:
        await driver.one(request(False), timeout)  # warm-up
        before = await provider_calls(info.llm_base_url)
        alone = [await driver.one(request(False), timeout) for _ in range(single)]
        # The floor makes as many provider calls as a job did (outline, sections, posts, …), counted.
        calls = round((await provider_calls(info.llm_base_url) - before) / single)
        raw = await floor(info.nats_url, info.database_url, info.llm_base_url, calls, single)
        loads = [
            await sustained(driver, info.home, image, seconds, window, timeout) for image in (False, True)
        ]
    single_p50 = statistics.median(r.seconds for r in alone)
    floor_p50 = statistics.median(raw)
    return {
        "single_job_seconds": percentiles([r.seconds for r in alone]),
        "single_outcomes": outcomes(alone),
        "floor_seconds": percentiles(raw),
        "floor": f"{HOPS} JetStream hops + {COMMITS} PostgreSQL commits + {calls} provider calls (a job's)",
        "single_p50_over_floor_p50": round(single_p50 / floor_p50, 2),
        "loads": loads,
    }


def main(
    seconds: Annotated[float, typer.Option(help="length of each sustained load")] = 20.0,
    window: Annotated[int, typer.Option(help="jobs kept unfinished during a load")] = 50,
    single: Annotated[int, typer.Option(help="single jobs (and floor runs) timed one at a time")] = 50,
    timeout: Annotated[float, typer.Option(help="seconds a job may take before it counts as lost")] = 120.0,
    output: Annotated[Path | None, typer.Option(help="results file")] = None,
) -> None:
    with embedded_stack(delay=0.0) as (_, info):
        result = asyncio.run(measure(info, seconds, window, single, timeout))
    path = write_result("throughput", {"provider_delay_seconds": 0.0, **result}, output)
    print(
        f"throughput: single job p50 {result['single_job_seconds']['p50']} s = "
        f"{result['single_p50_over_floor_p50']}x the floor ({result['floor_seconds']['p50']} s; target ≤ 5x)"
    )
    for load in result["loads"]:
        print(
            f"  image={load['image']}: {load['jobs_per_second']} jobs/s over {load['seconds']} s "
            f"(target ≥ 100 without image), p50 {load['latency_seconds'].get('p50')} s, outcomes {load['outcomes']}"
        )
        print(f"    CPU ms a job: {load['cpu_ms_per_job']}")
    print(f"written to {path}")


if __name__ == "__main__":
    typer.run(main)
