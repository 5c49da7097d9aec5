"""The job-state bucket: the gateway creates a job's entry before its job.requested, and reads who owns a
job from it (the stream and persistence remain the fallback for jobs without an entry)."""

from __future__ import annotations

import asyncio

from pressroom_contracts import subjects
from pressroom_contracts.ids import new_job_id
from pressroom_contracts.jobstate import JobState
from pressroom_contracts.queries import JobStatus
from pressroom_contracts.topology import JOBS_BUCKET


async def test_start_creates_the_entry_before_job_requested(gateway, ws_connect, pipeline):
    kv = await pipeline.nc.jetstream().key_value(JOBS_BUCKET.name)
    seen: asyncio.Queue[JobState | None] = asyncio.Queue()

    async def on_requested(msg) -> None:
        # Looked up the moment job.requested reaches a subscriber.
        job_id, _ = subjects.parse_content(msg.subject)
        entry = await kv.get(job_id)
        await seen.put(JobState.decode(entry.value))

    sub = await pipeline.nc.subscribe(subjects.content_of_type("job.requested"), cb=on_requested)
    try:
        await pipeline.sync()
        async with ws_connect(gateway) as client:
            await client.send({"type": "start", "request": {"topic": "State first"}})
            await client.expect("accepted")
        state = await asyncio.wait_for(seen.get(), 5)
    finally:
        await sub.unsubscribe()
    assert state is not None
    assert (state.owner, state.status) == (gateway.client_id, JobStatus.requested)


async def test_ownership_is_read_from_the_bucket(gateway, ws_connect, pipeline, other_key):
    kv = await pipeline.nc.jetstream().key_value(JOBS_BUCKET.name)
    # A job the bucket knows and the stream does not (yet): its owner may follow it.
    known = new_job_id()
    await kv.create(known, JobState(owner=gateway.client_id).encode())
    # The bucket wins over the stream.
    job, _ = await pipeline.new_job()
    await kv.create(job.job_id, JobState(owner=other_key.client_id).encode())
    async with ws_connect(gateway) as client:
        await client.send({"type": "subscribe", "job_id": known, "ref": "known"})
        await client.barrier()  # no error: subscribed
        await client.send({"type": "subscribe", "job_id": job.job_id, "ref": "theirs"})
        assert (await client.expect("error"))["code"] == "not_found"
        # A job without an entry falls back to its job.requested on the stream.
        mine, _ = await pipeline.new_job()
        await client.send({"type": "subscribe", "job_id": mine.job_id})
        assert (await client.expect("event"))["event"]["type"] == "job.requested"
