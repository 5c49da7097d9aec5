"""The recorder against a real PostgreSQL, with the announcements captured instead of published."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pressroom_contracts.events import JobCompletedEvent, JobFailedEvent, Stage
from pressroom_persistence import migrate
from pressroom_persistence.recorder import Recorder
from pressroom_persistence.store import Store
from pressroom_runtime.errors import TransientError


class Announcements:
    def __init__(self, failures: int = 0) -> None:
        self.sent: list[tuple[type, Any]] = []
        self.failures = failures

    async def __call__(self, event_cls: type, data: Any) -> int:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("NATS went away")  # the process dies between commit and publish
        self.sent.append((event_cls, data))
        return len(self.sent)


@pytest.fixture(scope="module")
async def store(database_url: str) -> AsyncIterator[Store]:
    await migrate.upgrade(database_url)
    store = Store(database_url, max_size=8)
    await store.open()
    yield store
    await store.close()


async def test_crash_between_commit_and_publish_announces_on_redelivery(store, events) -> None:
    recorder = Recorder(store)
    *before, last = events.full_run()
    quiet = Announcements()
    for event in before:
        await recorder.record(event, quiet)
    assert quiet.sent == []

    crashing = Announcements(failures=1)
    with pytest.raises(ConnectionError):
        await recorder.record(last, crashing)
    # The redelivery finds the job completed already and announces it (the stream drops a duplicate).
    await recorder.record(last, crashing)
    [(cls, data)] = crashing.sent
    assert cls is JobCompletedEvent and data.blog_title == "A title"

    # Once the announcement came back through the stream, a late duplicate announces nothing.
    await recorder.record(events.envelope(JobCompletedEvent, data), crashing)
    await recorder.record(last, crashing)
    assert len(crashing.sent) == 1


async def test_replicas_recording_the_last_artifacts_together_complete_once(store, events) -> None:
    recorder = Recorder(store)
    out = Announcements()
    for event in events.full_run()[:-3]:  # everything but the two social posts and the image
        await recorder.record(event, out)
    await recorder.record(events.image(), out)
    linkedin, x = events.social("linkedin"), events.social("x")
    # Replica A is inside its transaction, linkedin inserted but not committed, when replica B records x.
    async with store.job(events.job_id) as held:
        await held.log(linkedin)
        await held.add_social(linkedin)
        other = asyncio.create_task(recorder.record(x, out))
        await asyncio.sleep(0.3)
        # B waits for A's row lock; without it B would commit first, miss linkedin and never complete.
        assert not other.done()
    await asyncio.wait_for(other, 5)
    assert [cls for cls, _ in out.sent] == [JobCompletedEvent]


async def test_usage_costs_count_once(store, events) -> None:
    recorder = Recorder(store)
    out = Announcements()
    await recorder.record(events.requested(), out)
    first, second = events.usage("a", 0.1), events.usage("b", 0.2)
    for event in (first, first, second, second):
        await recorder.record(event, out)
    detail = await store.job_detail(events.job_id)
    assert detail is not None
    assert float(detail["job"]["cost_usd"]) == pytest.approx(0.3)
    assert detail["usage"]["calls"] == 2


async def test_state_machine(store, events) -> None:
    recorder = Recorder(store)
    out = Announcements()
    with pytest.raises(TransientError):
        await recorder.record(events.progress(), out)  # before its job: retried later
    await recorder.record(events.requested(), out)
    await recorder.record(events.requested(), out)  # a duplicate changes nothing
    assert (await store.job_detail(events.job_id))["job"]["status"] == "requested"
    await recorder.record(events.progress(), out)
    assert (await store.job_detail(events.job_id))["job"]["status"] == "running"

    failed = events.stage_failed(Stage.social, "rate_limited")
    await recorder.record(failed, out)
    await recorder.record(failed, out)  # redelivered before job.failed came back: announced again
    assert [cls for cls, _ in out.sent] == [JobFailedEvent, JobFailedEvent]
    assert out.sent[0][1] == out.sent[1][1]  # the same announcement, so the stream drops the copy
    await recorder.record(events.envelope(JobFailedEvent, out.sent[0][1]), out)
    await recorder.record(events.stage_failed(Stage.image, "other"), out)
    assert len(out.sent) == 2
    job = (await store.job_detail(events.job_id))["job"]
    assert (job["status"], job["failed_stage"], job["failure_code"]) == ("failed", "social", "rate_limited")


async def test_cancelled_job_does_not_complete(store, events) -> None:
    recorder = Recorder(store)
    out = Announcements()
    run = events.full_run()
    await recorder.record(run[0], out)
    await recorder.record(events.job_cancelled(), out)
    for event in run[1:]:
        await recorder.record(event, out)
    await recorder.record(events.stage_failed(), out)
    assert out.sent == []
    assert (await store.job_detail(events.job_id))["job"]["status"] == "cancelled"
