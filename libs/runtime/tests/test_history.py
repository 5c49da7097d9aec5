"""Reading back what a job has on the stream (history.recorded): oldest first, all of one type or the
first few, skipping stored messages that are not that job's events of that type."""

from __future__ import annotations

import nats
import pytest

from pressroom_contracts import subjects
from pressroom_contracts.jobs import JobRequest
from pressroom_devstack.provisioning import reset_nats
from pressroom_runtime.history import recorded
from pressroom_testkit import JobEvents


@pytest.fixture
async def nc(nats_url):
    reset_nats(nats_url)
    client = await nats.connect(nats_url)
    try:
        yield client
    finally:
        await client.close()


async def test_events_of_a_type_are_read_oldest_first_skipping_what_is_not_one(nc) -> None:
    job, other = JobEvents.new(JobRequest(topic="history")), JobEvents.new(JobRequest(topic="other"))
    js = nc.jetstream()
    subject = subjects.content(job.job_id, "stage.progress")
    assert await recorded(nc, job.job_id, "stage.progress") == []
    assert await recorded(nc, job.job_id, "stage.progress", limit=1) == []

    await js.publish(subject, b"{not an event")  # garbage first, then another job's event on this subject
    await js.publish(subject, other.progress(step=9).model_dump_json().encode())
    for step in (1, 2, 3):
        await js.publish(subject, job.progress(step=step).model_dump_json().encode())
        await js.publish(
            subjects.content(job.job_id, "job.requested"), job.requested().model_dump_json().encode()
        )

    every = await recorded(nc, job.job_id, "stage.progress")
    first = await recorded(nc, job.job_id, "stage.progress", limit=1)
    two = await recorded(nc, job.job_id, "stage.progress", limit=2)
    assert [e.data.step for e in every] == [1, 2, 3]
    assert [e.data.step for e in first] == [1]
    assert [e.data.step for e in two] == [1, 2]
