"""Nothing lost: the whole pipeline under a load of jobs while PostgreSQL is stopped for longer
than persistence used to retry, while NATS is killed and restarted, with a handler that crashes its
process on one message every time, and with a replica killed holding many messages. Every job ends;
nothing is stored twice; no object is left in S3 without its row.

Jobs are started as the gateway starts them (job-state entry, then job.requested), on the bus.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import asyncpg
import nats
import pytest
from nats.aio.client import Client

from pipeline import script_pipeline
from pressroom_contracts import subjects, topology
from pressroom_contracts.events import TERMINAL_TYPES
from pressroom_contracts.jobs import JobRequest
from pressroom_runtime import deadletter, history
from pressroom_runtime.provisioning import consumer_config
from pressroom_testkit import JobEvents, TestBus

pytestmark = pytest.mark.slow

# Retries paced in fractions of a second, so an outage of half a minute outlasts what persistence used
# to try (10 deliveries) many times over.
FAST = {"PRESSROOM_RETRY_BASE_SECONDS": "0.2", "PRESSROOM_RETRY_MAX_SECONDS": "2"}
PLATFORMS = ["linkedin", "x"]


def new_jobs(count: int, tag: str) -> list[JobEvents]:
    return [
        JobEvents.new(JobRequest(topic=f"Rooftop solar, {tag} {n}", platforms=PLATFORMS, image=True))
        for n in range(count)
    ]


async def start(nc: Client, jobs: list[JobEvents]) -> None:
    bus = TestBus(nc)
    for job in jobs:
        await bus.publish(job.requested(owner="load"))


async def ended(nc: Client, jobs: list[JobEvents], timeout: float) -> dict[str, str]:
    """Each job's terminal event type, once every job has one."""
    outcome: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while len(outcome) < len(jobs):
        for job in jobs:
            if job.job_id in outcome:
                continue
            for event_type in TERMINAL_TYPES:
                if await history.exists(nc, job.job_id, event_type):
                    outcome[job.job_id] = event_type
        assert time.monotonic() < deadline, f"{len(jobs) - len(outcome)} jobs never ended"
        await asyncio.sleep(0.5)
    return outcome


async def stored_once(database_url: str, s3: Any, jobs: list[JobEvents]) -> None:
    """Every job completed with each artifact stored once, and every object in S3 has its row."""
    conn = await asyncpg.connect(database_url)
    try:
        for job in jobs:
            counts = await conn.fetchrow(
                """SELECT (SELECT status FROM jobs WHERE id = $1) AS status,
                          (SELECT count(*) FROM blog_posts WHERE job_id = $1) AS blogs,
                          (SELECT count(*) FROM social_posts WHERE job_id = $1) AS posts,
                          (SELECT count(*) FROM images WHERE job_id = $1) AS images,
                          (SELECT count(*) FROM events WHERE job_id = $1 AND type = 'job.completed') AS ends""",
                job.job_id,
            )
            assert tuple(counts) == ("completed", 1, len(PLATFORMS), 1, 1), (job.job_id, dict(counts))
            referenced = set()
            for row in await conn.fetch(
                "SELECT object_key, variants FROM images WHERE job_id = $1", job.job_id
            ):
                variants = (
                    json.loads(row["variants"]) if isinstance(row["variants"], str) else row["variants"]
                )
                referenced |= {row["object_key"], *(v["object_key"] for v in variants)}
            objects = {
                o.object_name for o in s3.client().list_objects(s3.bucket, prefix=f"jobs/{job.job_id}/")
            }
            assert objects == referenced, f"orphan objects of {job.job_id}: {objects - referenced}"
    finally:
        await conn.close()


async def no_dead_letters(nc: Client, jobs: list[JobEvents]) -> None:
    for job in jobs:
        assert await deadletter.letters(nc, job_id=job.job_id) == []


async def test_postgres_stopped_under_load_longer_than_the_old_give_up_horizon(
    service_runner, scripted_llm, postgres_server, database_url, s3, nats_url
):
    script_pipeline(scripted_llm)
    service_runner.start(env=FAST)
    jobs = new_jobs(10, "pg outage")
    nc = await nats.connect(nats_url)
    try:
        await start(nc, jobs[:5])
        postgres_server.stop()
        try:
            await start(nc, jobs[5:])  # more load while it is down
            # The stages go on; persistence keeps what it took and waits. Half a minute is many times
            # what 10 paced deliveries took before; the old policy dropped events after them.
            await asyncio.sleep(30)
        finally:
            postgres_server.start()
        outcome = await ended(nc, jobs, timeout=180)
        assert set(outcome.values()) == {"job.completed"}
        await stored_once(database_url, s3, jobs)
        await no_dead_letters(nc, jobs)
    finally:
        await nc.close()


async def test_nats_killed_and_restarted_under_load(
    service_runner, scripted_llm, nats_server, database_url, s3, nats_url
):
    script_pipeline(scripted_llm)
    service_runner.start(env=FAST)
    jobs = new_jobs(10, "nats outage")
    nc = await nats.connect(nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.5)
    try:
        await start(nc, jobs)
        nats_server.kill()
        await asyncio.sleep(10)  # everything that talks to NATS is cut off for a while
        nats_server.start()
        outcome = await ended(nc, jobs, timeout=180)
        assert set(outcome.values()) == {"job.completed"}
        await stored_once(database_url, s3, jobs)
        await no_dead_letters(nc, jobs)
    finally:
        await nc.close()


async def shorten_ack_wait(nc: Client, spec: topology.ConsumerSpec, seconds: float) -> None:
    """A short ack wait on the server, so an unacknowledged message comes back in seconds, not 30."""
    await nc.jetstream().add_consumer(
        spec.stream, consumer_config(spec.model_copy(update={"ack_wait_seconds": seconds}))
    )


async def test_a_handler_that_crashes_on_one_message_every_time_fails_that_job_only(
    service_runner, scripted_llm, nats_url, database_url
):
    script_pipeline(scripted_llm)
    nc = await nats.connect(nats_url)
    try:
        supervisor = service_runner.start(env=FAST)
        await shorten_ack_wait(nc, topology.WRITER, 3)
        before, after = new_jobs(2, "before"), new_jobs(2, "after")
        await start(nc, before)
        assert set((await ended(nc, before, timeout=60)).values()) == {"job.completed"}

        # The poison: its writer dies mid-call every time it takes it (the test plays the crash).
        [poison] = new_jobs(1, "poison")
        scripted_llm.hang(times=topology.WRITER.max_deliver)
        await start(nc, [poison])
        for _ in range(topology.WRITER.max_deliver):
            await asyncio.to_thread(scripted_llm.wait_for_requests, len(scripted_llm.requests) + 1, 60)
            service_runner.kill("writer")
            last_crash = time.monotonic()
            supervisor.restart("writer", wait=False)
        scripted_llm.release()

        # Given up by the server one ack wait after the last crash; the job fails with the reason.
        assert await ended(nc, [poison], timeout=60) == {poison.job_id: "job.failed"}
        assert time.monotonic() - last_crash < 3 + 30
        [failed] = await history.recorded(nc, poison.job_id, "job.failed")
        assert (failed.data.stage, failed.data.code) == ("blog", deadletter.MAX_DELIVERIES)
        (letter,) = [letter for _, letter in await deadletter.letters(nc, job_id=poison.job_id)]
        assert (letter.consumer, letter.reason, letter.deliveries) == ("writer", "max_deliveries", 5)

        supervisor.wait_healthy()
        await start(nc, after)  # the writer keeps serving everyone else
        assert set((await ended(nc, after, timeout=60)).values()) == {"job.completed"}
    finally:
        await nc.close()


async def test_killing_a_replica_that_holds_many_messages_loses_nothing(
    service_runner, scripted_llm, nats_url, database_url, s3
):
    script_pipeline(scripted_llm)
    delay, scripted_llm.chunk_delay = scripted_llm.chunk_delay, 0.5  # every model call takes seconds
    nc = await nats.connect(nats_url)
    try:
        supervisor = service_runner.start(env={**FAST, "PRESSROOM_WRITER_CONCURRENCY": "8"})
        await shorten_ack_wait(nc, topology.WRITER, 5)
        jobs = new_jobs(8, "kill -9")
        await start(nc, jobs)

        async def holding_many() -> bool:
            info = await nc.jetstream().consumer_info(subjects.STREAM, topology.WRITER.durable)
            return (info.num_ack_pending or 0) >= 6

        deadline = time.monotonic() + 60
        while not await holding_many():
            assert time.monotonic() < deadline, "the writer never held many messages at once"
            await asyncio.sleep(0.1)
        service_runner.kill("writer")  # kill -9: nothing acknowledged, nothing handed back
        supervisor.restart("writer")

        assert set((await ended(nc, jobs, timeout=180)).values()) == {"job.completed"}
        await stored_once(database_url, s3, jobs)
    finally:
        scripted_llm.chunk_delay = delay
        await nc.close()
