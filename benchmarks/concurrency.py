"""Concurrency inside a replica: N jobs started at once, one replica of each service, a provider that
takes a fixed time per call. Prints makespan ÷ one job's latency (1.0 = N jobs cost as much as one).

    .venv/bin/python benchmarks/concurrency.py --jobs 50 --delay 2

The baseline is one job alone on the same stack in the same run (median of --single runs). The
target: 50 jobs with a 2 s provider within 2x one job. Writes benchmarks/results/concurrency.json.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Annotated

import typer
from harness import JobDriver, embedded_stack, outcomes, percentiles, write_result

from pressroom_contracts.jobs import JobRequest


async def measure(nats_url: str, jobs: int, single: int, timeout: float, image: bool) -> dict[str, object]:
    request = JobRequest(
        topic="How rooftop solar helps households", length="short", platforms=["linkedin", "x"], image=image
    )
    async with JobDriver(nats_url) as driver:
        await driver.one(request, timeout)  # warm-up: connections, caches, first compile of everything
        alone = [await driver.one(request, timeout) for _ in range(single)]
        began = time.perf_counter()
        runs = await asyncio.gather(*[driver.start(request) for _ in range(jobs)])
        await asyncio.gather(*[driver.finish(run, timeout) for run in runs])
        makespan = time.perf_counter() - began
    one_job = statistics.median(r.seconds for r in alone)
    return {
        "one_job_seconds": round(one_job, 3),
        "makespan_seconds": round(makespan, 3),
        "ratio": round(makespan / one_job, 2),
        "latency_seconds": percentiles([r.seconds for r in runs if r.ended]),
        "outcomes": outcomes(runs),
        "single_outcomes": outcomes(alone),
    }


def main(
    jobs: Annotated[int, typer.Option(help="jobs started at once")] = 50,
    delay: Annotated[float, typer.Option(help="seconds every provider call takes")] = 2.0,
    single: Annotated[int, typer.Option(help="lone jobs timed for the baseline")] = 3,
    timeout: Annotated[float, typer.Option(help="seconds a job may take before it counts as lost")] = 300.0,
    image: Annotated[bool, typer.Option(help="jobs with an illustration (the cover card, CPU-bound)")] = True,
    output: Annotated[Path | None, typer.Option(help="results file")] = None,
) -> None:
    with embedded_stack(delay=delay) as (_, info):
        result = asyncio.run(measure(info.nats_url, jobs, single, timeout, image))
    record = {
        "jobs": jobs,
        "provider_delay_seconds": delay,
        "image": image,
        "replicas": "one of each service",
        **result,
    }
    path = write_result("concurrency", record, output)
    print(
        f"concurrency: {jobs} jobs at once in {result['makespan_seconds']} s; one job {result['one_job_seconds']} s; "
        f"ratio {result['ratio']} (target ≤ 2); outcomes {result['outcomes']}; written to {path}"
    )


if __name__ == "__main__":
    typer.run(main)
