"""Footprint: what one job leaves in NATS, PostgreSQL and the object store, for sizing them.

    .venv/bin/python benchmarks/footprint.py --jobs 50

Runs `--jobs` jobs (short blog, LinkedIn + X, cover image, research on the sample knowledge folder) on the
embedded stack with the instant fake provider, and measures what they added: the CONTENT stream's bytes
and messages, the LIVE stream's (text deltas, kept 15 minutes), PostgreSQL's database size and the
images' bytes (from image.completed). The baseline of the same run is the event payloads themselves
(the bytes of every message the jobs published), so the ratio says what storing them costs on top.
Projections for 1,000 and 100,000 jobs a day follow from the per-job figures and the retention of each
store. Writes benchmarks/results/footprint.json. The fake provider's texts are shorter than a real
model's long post: scale the text-bound figures by the length you ask for.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import nats
import typer
from harness import JobDriver, embedded_stack, outcomes, write_result

from pressroom_contracts import subjects
from pressroom_contracts.jobs import JobRequest
from pressroom_contracts.topology import CONTENT_STREAM, LIVE_STREAM

REQUEST = JobRequest(topic="How rooftop solar helps households", length="short", platforms=["linkedin", "x"])
DAY = 24 * 3600


async def _streams(nats_url: str) -> dict[str, dict[str, int]]:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        sizes = {}
        for spec in (CONTENT_STREAM, LIVE_STREAM):
            state = (await js.stream_info(spec.name)).state
            sizes[spec.name] = {"bytes": state.bytes, "messages": state.messages}
        return sizes
    finally:
        await nc.close()


async def _payloads(nats_url: str, job_ids: set[str]) -> dict[str, int]:
    """Bytes of every message the jobs published on CONTENT, and of their images."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        total = (await js.stream_info(CONTENT_STREAM.name)).state.messages
        sub = await js.subscribe(subjects.content_of_type(">"), ordered_consumer=True)
        payload = images = seen = 0
        while seen < total:
            msg = await sub.next_msg(timeout=10)
            seen += 1
            job_id, event_type = subjects.parse_content(msg.subject)
            if job_id not in job_ids:
                continue
            payload += len(msg.data)
            if event_type == "image.completed":
                images += int(json.loads(msg.data)["data"]["size_bytes"])
        await sub.unsubscribe()
        return {"payload_bytes": payload, "image_bytes": images}
    finally:
        await nc.close()


async def _database_bytes(database_url: str) -> int:
    db = await asyncpg.connect(database_url)
    try:
        await db.execute("CHECKPOINT")
        return int(await db.fetchval("SELECT pg_database_size(current_database())"))
    finally:
        await db.close()


async def measure(nats_url: str, database_url: str, jobs: int, timeout: float) -> dict[str, Any]:
    streams_before, db_before = await _streams(nats_url), await _database_bytes(database_url)
    async with JobDriver(nats_url) as driver:
        runs = await asyncio.gather(*[driver.start(REQUEST) for _ in range(jobs)])
        await asyncio.gather(*[driver.finish(run, timeout) for run in runs])
    streams_after, db_after = await _streams(nats_url), await _database_bytes(database_url)
    done = outcomes(runs)
    payloads = await _payloads(nats_url, {run.job_id for run in runs})

    def per_job(value: int) -> int:
        return round(value / jobs)

    content = streams_after["CONTENT"]["bytes"] - streams_before["CONTENT"]["bytes"]
    per = {
        "content_stream_bytes": per_job(content),
        "content_stream_messages": per_job(
            streams_after["CONTENT"]["messages"] - streams_before["CONTENT"]["messages"]
        ),
        "live_stream_bytes": per_job(streams_after["LIVE"]["bytes"] - streams_before["LIVE"]["bytes"]),
        "database_bytes": per_job(db_after - db_before),
        "image_bytes": per_job(payloads["image_bytes"]),
        "event_payload_bytes": per_job(payloads["payload_bytes"]),
    }
    retention_days = {"content_stream": CONTENT_STREAM.max_age_seconds / DAY}

    def projected(jobs_a_day: int) -> dict[str, float]:
        gib = 1024**3
        return {
            "content_stream_gib": round(per["content_stream_bytes"] * jobs_a_day * retention_days["content_stream"] / gib, 2),
            "database_gib_per_year": round(per["database_bytes"] * jobs_a_day * 365 / gib, 2),
            "images_gib_per_year": round(per["image_bytes"] * jobs_a_day * 365 / gib, 2),
            "jobs_per_second_on_average": round(jobs_a_day / DAY, 3),
        }  # fmt: skip

    return {
        "jobs": jobs,
        "outcomes": done,
        "per_job": per,
        "ratio_content_stream_to_payload": round(content / max(payloads["payload_bytes"], 1), 2),
        "retention_days": retention_days,
        "projected": {"1000_jobs_a_day": projected(1_000), "100000_jobs_a_day": projected(100_000)},
    }


def main(
    jobs: Annotated[int, typer.Option(help="jobs run (all started at once)")] = 50,
    timeout: Annotated[float, typer.Option(help="seconds a job may take before it counts as lost")] = 300.0,
    output: Annotated[Path | None, typer.Option(help="results file")] = None,
) -> None:
    with embedded_stack(delay=0.0) as (_, info):
        record = asyncio.run(measure(info.nats_url, info.database_url, jobs, timeout))
    path = write_result("footprint", record, output)
    print(json.dumps({k: record[k] for k in ("outcomes", "per_job", "ratio_content_stream_to_payload")}))
    print(json.dumps(record["projected"], indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    typer.run(main)
