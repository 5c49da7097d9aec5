"""Scale-out: jobs/s with writer x 3 ÷ writer x 1, with a slow provider and one message at a time per
writer replica (PRESSROOM_WRITER_CONCURRENCY=1), so replicas are the only way to write more at once.

    .venv/bin/python benchmarks/scaleout.py --jobs 12 --delay 1

Both measurements run on one stack in the same run: first with one writer, then after two more writer
replicas joined the same durable consumer. Writes benchmarks/results/scaleout.json.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from harness import JobDriver, embedded_stack, outcomes, percentiles, write_result

from pressroom_contracts.jobs import JobRequest

REQUEST = JobRequest(topic="How rooftop solar helps households", length="short", platforms=["x"], image=False)


async def batch(nats_url: str, jobs: int, timeout: float) -> dict[str, Any]:
    async with JobDriver(nats_url) as driver:
        began = time.perf_counter()
        runs = await asyncio.gather(*[driver.start(REQUEST) for _ in range(jobs)])
        await asyncio.gather(*[driver.finish(run, timeout) for run in runs])
        wall = time.perf_counter() - began
    return {
        "wall_seconds": round(wall, 3),
        "jobs_per_second": round(sum(1 for r in runs if r.ended) / wall, 3),
        "latency_seconds": percentiles([r.seconds for r in runs if r.ended]),
        "outcomes": outcomes(runs),
    }


def main(
    jobs: Annotated[int, typer.Option(help="jobs started at once, per measurement")] = 12,
    delay: Annotated[float, typer.Option(help="seconds every provider call takes")] = 1.0,
    replicas: Annotated[int, typer.Option(help="writer replicas of the second measurement")] = 3,
    timeout: Annotated[float, typer.Option(help="seconds a job may take before it counts as lost")] = 300.0,
    output: Annotated[Path | None, typer.Option(help="results file")] = None,
) -> None:
    with embedded_stack(delay=delay, env={"PRESSROOM_WRITER_CONCURRENCY": "1"}) as (stack, info):
        asyncio.run(batch(info.nats_url, 1, timeout))  # warm-up
        one = asyncio.run(batch(info.nats_url, jobs, timeout))
        assert stack.services is not None
        for _ in range(replicas - 1):
            stack.services.add_replica("writer")
        many = asyncio.run(batch(info.nats_url, jobs, timeout))
    ratio = round(many["jobs_per_second"] / one["jobs_per_second"], 2)
    record = {
        "jobs": jobs,
        "provider_delay_seconds": delay,
        "writer_concurrency": 1,
        "writer_x1": one,
        f"writer_x{replicas}": many,
        "ratio": ratio,
    }
    path = write_result("scaleout", record, output)
    print(
        f"scaleout: writer x1 {one['jobs_per_second']} jobs/s, x{replicas} {many['jobs_per_second']} jobs/s; "
        f"ratio {ratio} (ideal {replicas}); written to {path}"
    )


if __name__ == "__main__":
    typer.run(main)
