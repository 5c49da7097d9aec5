"""The recorder against a real PostgreSQL, with the announcements captured instead of published."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from pressroom_contracts.events import (
    BlogCompleted,
    BlogCompletedEvent,
    Citation,
    JobCancelledEvent,
    JobCompletedEvent,
    JobFailedEvent,
    Stage,
    TokenUsage,
)
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
    async with store.job(events.job_id, handling=linkedin) as held:
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


async def test_running_usage_reports_supersede_each_other(store, events) -> None:
    recorder = Recorder(store)
    out = Announcements()
    await recorder.record(events.requested(), out)
    first, third = (
        events.usage("blog:1", 0.01, output_tokens=10),
        events.usage("blog:1", 0.03, output_tokens=30, report=3),
    )
    late = events.usage("blog:1", 0.02, output_tokens=20, report=2)  # overtaken on the way
    other = events.usage("social:x", 0.005)
    for event in (first, third, late, third, other):
        await recorder.record(event, out)
    detail = await store.job_detail(events.job_id)
    assert detail is not None
    assert float(detail["job"]["cost_usd"]) == pytest.approx(0.035)  # the newest report of each call
    assert (detail["usage"]["calls"], detail["usage"]["output_tokens"]) == (2, 30 + 7)


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


async def _history(store: Store, job_id: str) -> dict[str, Any]:
    detail = await store.job_detail(job_id)
    assert detail is not None
    return detail


async def test_versions_after_completion_keep_the_job_completed_and_announce_nothing(store, events) -> None:
    recorder = Recorder(store)
    out = Announcements()
    for event in events.full_run():
        await recorder.record(event, out)
    assert [cls for cls, _ in out.sent] == [JobCompletedEvent]
    # job.completed has not come back through the stream yet: still, new versions announce nothing.
    later = [
        events.blog_edited(2, editor="bob"),
        events.blog_regenerated(3),
        events.social_regenerated("x", 2, parts=["1/2 first", "2/2 second"]),
        events.social_edited("linkedin", 2),
        events.image_regenerated(2),
    ]
    for event in later + later:  # each one twice
        await recorder.record(event, out)
    assert len(out.sent) == 1

    detail = await _history(store, events.job_id)
    assert detail["job"]["status"] == "completed"
    history = detail["history"]
    assert [(v["version"], v["origin"], v["editor"]) for v in history["blog"]] == [
        (1, "generated", None), (2, "edited", "bob"), (3, "regenerated", None),
    ]  # fmt: skip
    assert [(v["version"], v["origin"]) for v in history["social"]["x"]] == [
        (1, "generated"),
        (2, "regenerated"),
    ]
    assert [(v["version"], v["origin"]) for v in history["social"]["linkedin"]] == [
        (1, "generated"),
        (2, "edited"),
    ]
    assert [(v["version"], v["origin"]) for v in history["image"]] == [(1, "generated"), (2, "regenerated")]
    assert (detail["blog"]["version"], detail["blog"]["title"]) == (3, "A new title")
    assert detail["social"]["x"]["parts"] == ["1/2 first", "2/2 second"]
    assert detail["image"]["variants"][0]["name"] == "square"


async def test_an_edit_keeps_the_citations_its_markdown_still_uses(store, events) -> None:
    recorder = Recorder(store)
    out = Announcements()
    await recorder.record(events.requested(), out)
    cited = [Citation(number=n, title=f"S{n}", location=f"https://example.com/{n}") for n in (1, 2)]
    blog = BlogCompleted(
        request=events.request, title="T", markdown="# T\n\nA [1] and B [2].", word_count=6,
        citations=cited, usage=TokenUsage(model="m"),
    )  # fmt: skip
    await recorder.record(events.envelope(BlogCompletedEvent, blog), out)
    await recorder.record(events.blog_edited(2, markdown="# T\n\nOnly B [2]."), out)
    edited = (await _history(store, events.job_id))["blog"]
    assert (edited["version"], edited["origin"], edited["model"]) == (2, "edited", None)
    assert [c["number"] for c in edited["citations"]] == [2]


async def test_a_version_taken_by_another_event_is_not_overwritten(store, events) -> None:
    recorder = Recorder(store)
    out = Announcements()
    await recorder.record(events.requested(), out)
    await recorder.record(events.blog(), out)
    await recorder.record(events.blog_edited(2, title="Edited first"), out)
    await recorder.record(events.blog_regenerated(2, title="Regenerated second"), out)
    detail = await _history(store, events.job_id)
    assert (detail["blog"]["title"], detail["blog"]["origin"]) == ("Edited first", "edited")
    assert len(detail["history"]["blog"]) == 2


async def test_cancel_announces_once_even_across_a_crash(store, events) -> None:
    recorder = Recorder(store)
    await recorder.record(events.requested(), Announcements())
    cancel = events.cancel_requested("changed my mind")
    crashing = Announcements(failures=1)
    with pytest.raises(ConnectionError):
        await recorder.record(cancel, crashing)
    await recorder.record(cancel, crashing)  # the redelivery announces what was committed
    await recorder.record(events.cancel_requested("second click"), crashing)  # the same news again
    assert [(cls, data.reason) for cls, data in crashing.sent] == [
        (JobCancelledEvent, "changed my mind"), (JobCancelledEvent, "changed my mind"),
    ]  # fmt: skip
    # Once job.cancelled came back, nothing more; artifacts are still stored, the status stays.
    await recorder.record(events.envelope(JobCancelledEvent, crashing.sent[0][1]), crashing)
    await recorder.record(cancel, crashing)
    for event in events.full_run()[1:]:
        await recorder.record(event, crashing)
    await recorder.record(events.usage("late", 5.0), crashing)
    assert len(crashing.sent) == 2
    detail = await _history(store, events.job_id)
    assert (detail["job"]["status"], detail["job"]["cancel_reason"]) == ("cancelled", "changed my mind")
    assert detail["blog"] is not None and len(detail["social"]) == 2


@pytest.mark.parametrize("finished_by", ["completed", "failed"])
async def test_cancel_of_a_finished_job_is_a_no_op(store, new_events, finished_by) -> None:
    events = new_events()
    recorder = Recorder(store)
    out = Announcements()
    run = events.full_run() if finished_by == "completed" else [events.requested(), events.stage_failed()]
    for event in run:
        await recorder.record(event, out)
    sent = len(out.sent)
    await recorder.record(events.cancel_requested(), out)
    assert len(out.sent) == sent
    assert (await _history(store, events.job_id))["job"]["status"] == finished_by


async def test_budget_from_the_request_else_the_default(store, new_events) -> None:
    recorder = Recorder(store, default_budget_usd=0.02)
    out = Announcements()
    own, default, unlimited = new_events(budget_usd=0.05), new_events(), new_events()
    await recorder.record(own.requested(), out)
    await recorder.record(default.requested(), out)
    await Recorder(store).record(unlimited.requested(), out)  # recorded where no default was set
    for job in (own, default, unlimited):
        await recorder.record(job.usage("a", 0.015), out)
        await recorder.record(job.usage("b", 0.01), out)
    # Only `default` went over its budget (0.025 > 0.02); `own` has 0.05, `unlimited` none.
    [(cls, failure)] = out.sent
    assert cls is JobFailedEvent
    assert (failure.stage, failure.code) == (Stage.blog, "budget_exceeded")
    assert failure.message == "estimated cost $0.0250 exceeded the job's budget of $0.0200"
    statuses = [(await _history(store, job.job_id))["job"] for job in (own, default, unlimited)]
    assert [(j["status"], j["budget_usd"]) for j in statuses] == [
        ("requested", Decimal("0.05")), ("failed", Decimal("0.02")), ("requested", None),
    ]  # fmt: skip


async def test_budget_failure_is_announced_again_after_a_crash_and_only_then(store, new_events) -> None:
    events = new_events(budget_usd=0.01)
    recorder = Recorder(store)
    await recorder.record(events.requested(), Announcements())
    over = events.usage("a", 0.0123)
    crashing = Announcements(failures=1)
    with pytest.raises(ConnectionError):
        await recorder.record(over, crashing)
    await recorder.record(over, crashing)
    await recorder.record(events.usage("b", 0.01), crashing)  # more cost on a failed job: no new failure
    assert [cls for cls, _ in crashing.sent] == [JobFailedEvent]
    await recorder.record(events.envelope(JobFailedEvent, crashing.sent[0][1]), crashing)
    await recorder.record(over, crashing)
    assert len(crashing.sent) == 1
    job = (await _history(store, events.job_id))["job"]
    assert (job["status"], job["failure_code"], float(job["cost_usd"])) == (
        "failed",
        "budget_exceeded",
        0.0223,
    )


async def test_a_report_stored_before_a_crash_still_fails_the_job_over_its_budget(store, new_events) -> None:
    events = new_events(budget_usd=0.01)
    recorder = Recorder(store)
    await recorder.record(events.requested(), Announcements())
    over = events.usage("a", 0.0123)
    # The process stored the report (its own statement) and died before failing the job.
    stored = await store.usage(over)
    assert stored is not None and stored.overran_budget
    assert (await _history(store, events.job_id))["job"]["status"] == "requested"
    out = Announcements()
    await recorder.record(over, out)  # the redelivery
    [(cls, failure)] = out.sent
    assert (cls, failure.code) == (JobFailedEvent, "budget_exceeded")
    job = (await _history(store, events.job_id))["job"]
    assert (job["status"], float(job["cost_usd"])) == ("failed", 0.0123)  # counted once


async def test_progress_logs_once_touches_an_active_job_and_leaves_a_finished_one_as_it_is(
    store, events
) -> None:
    synced: list[tuple[str, str, str | None]] = []

    async def sync(job_id: str, status: str, owner: str | None) -> None:
        synced.append((job_id, status, owner))

    recorder = Recorder(store, sync=sync)
    out = Announcements()
    await recorder.record(events.requested(owner="alice"), out)

    async def job_row() -> Any:
        async with store.pool.acquire() as conn:
            return await conn.fetchrow(
                "SELECT status, updated_at, (SELECT count(*) FROM events WHERE job_id = $1) AS logged"
                " FROM jobs WHERE id = $1",
                events.job_id,
            )

    first = events.progress(step=1)
    await recorder.record(first, out)
    await recorder.record(first, out)  # redelivered: logged once
    running = await job_row()
    assert (running["status"], running["logged"]) == ("running", 2)
    assert synced == [(events.job_id, "running", "alice")]  # mirrored once per change

    await recorder.record(events.progress(step=2), out)
    touched = await job_row()
    assert touched["updated_at"] > running["updated_at"]  # progress, for the stalled-job sweep

    await recorder.record(events.cancel_requested("enough"), out)
    cancelled = await job_row()
    await recorder.record(events.progress(step=3), out)  # late: stored, the job stays cancelled
    late = await job_row()
    assert (late["status"], late["logged"], late["updated_at"]) == ("cancelled", 5, cancelled["updated_at"])


async def test_an_event_of_a_job_not_recorded_yet_waits_and_leaves_no_trace(store, new_events) -> None:
    recorder, out = Recorder(store), Announcements()
    early = new_events()
    for event in (early.usage(), early.blog(), early.stage_failed()):
        with pytest.raises(TransientError):  # its job.requested is on its way: tried again later
            await recorder.record(event, out)
    async with store.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM events WHERE job_id = $1", early.job_id) == 0
    await recorder.record(early.requested(), out)
    await recorder.record(early.blog(), out)  # now it is recorded, and logged once
    async with store.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM events WHERE job_id = $1", early.job_id) == 2
