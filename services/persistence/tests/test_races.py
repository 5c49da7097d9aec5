"""Persistence under concurrency on a real PostgreSQL: replicas recording the same jobs' events at once,
each event several times, in any order — completion is decided exactly once per job; and the sweep that
fails jobs with no progress."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from pressroom_contracts.events import Envelope, JobCompletedEvent, JobFailedEvent, Stage
from pressroom_persistence import migrate
from pressroom_persistence.recorder import STALLED, Recorder
from pressroom_persistence.store import Store
from pressroom_persistence.sweep import Sweeper
from pressroom_runtime.errors import TransientError
from pressroom_testkit import JobEvents

REPLICAS = 4
JOBS = 12


class Announcements:
    def __init__(self) -> None:
        self.sent: list[tuple[str, type, Any]] = []

    def to(self, job_id: str) -> Callable[[type, Any], Any]:
        async def emit(event_cls: type, data: Any) -> None:
            self.sent.append((job_id, event_cls, data))

        return emit


@pytest.fixture
async def replicas(fresh_database_url: str) -> AsyncIterator[list[Recorder]]:
    """Four recorders with a pool each, as four persistence replicas would be, on an empty database."""
    await migrate.upgrade(fresh_database_url)
    stores = [Store(fresh_database_url, max_size=8) for _ in range(REPLICAS)]
    for store in stores:
        await store.open()
    try:
        yield [Recorder(store) for store in stores]
    finally:
        for store in stores:
            await store.close()


async def record(recorder: Recorder, event: Envelope, out: Announcements) -> None:
    """As the consumer does: an event that came before its job is tried again a moment later."""
    while True:
        try:
            await recorder.record(event, out.to(event.job_id))
            return
        except TransientError:
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("copies", [1, 3], ids=["each once", "each three times"])
async def test_racing_events_on_many_replicas_complete_each_job_exactly_once(
    replicas, new_events, fresh_database_url, copies
) -> None:
    jobs = [new_events(topic=f"Race number {n}") for n in range(JOBS)]
    deliveries = [event for job in jobs for event in job.full_run() for _ in range(copies)]
    random.Random(7).shuffle(deliveries)
    out = Announcements()
    # Every delivery at once, spread over the replicas: the last artifacts of a job race each other.
    await asyncio.gather(*(record(replicas[n % REPLICAS], e, out) for n, e in enumerate(deliveries)))

    # Decided once per job: one compare-and-set won, and every announcement of it is the same news (a
    # redelivered completing artifact announces it again until it is back from the stream, whose
    # de-duplication key keeps one copy).
    decided: dict[str, set[str]] = {}
    for job_id, cls, data in out.sent:
        assert cls is JobCompletedEvent
        decided.setdefault(job_id, set()).add(data.model_dump_json())
    assert {job_id: len(news) for job_id, news in decided.items()} == {job.job_id: 1 for job in jobs}
    conn = await asyncpg.connect(fresh_database_url)
    try:
        rows = await conn.fetch(
            """SELECT j.id, j.status, j.cost_usd, j.ended_by,
                      (SELECT count(*) FROM blog_posts b WHERE b.job_id = j.id) AS blogs,
                      (SELECT count(*) FROM social_posts s WHERE s.job_id = j.id) AS posts,
                      (SELECT count(*) FROM images i WHERE i.job_id = j.id) AS images,
                      (SELECT count(*) FROM usage u WHERE u.job_id = j.id) AS calls,
                      (SELECT count(*) FROM events e WHERE e.job_id = j.id) AS logged
               FROM jobs j"""
        )
    finally:
        await conn.close()
    assert len(rows) == JOBS
    for row in rows:
        assert (row["status"], row["blogs"], row["posts"], row["images"], row["calls"]) == (
            "completed",
            1,
            2,
            1,
            1,
        )
        assert float(row["cost_usd"]) == pytest.approx(0.0125)  # however often the usage came
        assert row["logged"] == len(jobs[0].full_run())
        assert row["ended_by"] is not None


async def test_running_usage_reports_racing_on_many_replicas_count_each_calls_newest_once(
    replicas, new_events, fresh_database_url
) -> None:
    # Each call reports as it runs (report n costs n cents) and every report comes three times, in any
    # order, on any replica: a job's cost is the sum of its calls' newest reports, however they raced.
    jobs = [new_events(topic=f"Costs {n}") for n in range(JOBS)]
    calls, reports = ("outline", "section:1", "post:x"), 5
    usage = [
        job.usage(call, cost=report / 100, report=report)
        for job in jobs
        for call in calls
        for report in range(1, reports + 1)
    ]
    deliveries = [job.requested() for job in jobs] + usage * 3
    random.Random(11).shuffle(deliveries)
    out = Announcements()
    await asyncio.gather(*(record(replicas[n % REPLICAS], e, out) for n, e in enumerate(deliveries)))

    assert out.sent == []  # no budget: nothing to announce
    conn = await asyncpg.connect(fresh_database_url)
    try:
        rows = await conn.fetch(
            """SELECT j.cost_usd, array_agg(DISTINCT u.report) AS reports, count(u.*) AS calls,
                      (SELECT count(*) FROM events e WHERE e.job_id = j.id) AS logged
               FROM jobs j JOIN usage u ON u.job_id = j.id GROUP BY j.id"""
        )
    finally:
        await conn.close()
    assert len(rows) == JOBS
    for row in rows:
        assert float(row["cost_usd"]) == pytest.approx(len(calls) * reports / 100)
        assert (row["reports"], row["calls"]) == ([reports], len(calls))
        assert row["logged"] == 1 + len(calls) * reports  # each report logged once


async def stale(database_url: str, job: JobEvents) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE jobs SET updated_at = now() - interval '1 hour' WHERE id = $1", job.job_id)
    finally:
        await conn.close()


async def test_the_sweep_fails_jobs_without_progress_at_the_stage_they_wait_for(
    replicas, new_events, fresh_database_url
) -> None:
    recorder = replicas[0]
    out = Announcements()
    waiting_for_research, waiting_for_posts, busy = new_events(), new_events(), new_events()
    for job in (waiting_for_research, waiting_for_posts, busy):
        await recorder.record(job.requested(), out.to(job.job_id))
    for event in (waiting_for_posts.research(), waiting_for_posts.blog(), waiting_for_posts.image()):
        await recorder.record(event, out.to(waiting_for_posts.job_id))
    await stale(fresh_database_url, waiting_for_research)
    await stale(fresh_database_url, waiting_for_posts)

    sweeper = Sweeper(recorder.store, recorder, out.to, stale_after=600, interval=60)
    assert await sweeper.sweep() == 2
    assert await sweeper.sweep() == 0  # failed once: the second sweep has nothing to do
    failures = {job_id: data for job_id, cls, data in out.sent if cls is JobFailedEvent}
    assert set(failures) == {waiting_for_research.job_id, waiting_for_posts.job_id}
    research, posts = failures[waiting_for_research.job_id], failures[waiting_for_posts.job_id]
    assert (research.stage, research.code) == (Stage.research, STALLED)
    assert (posts.stage, posts.code) == (Stage.social, STALLED)
    assert posts.message == "no progress for 600 s while waiting for social:linkedin, social:x"
    busy_state = await recorder.store.job_detail(busy.job_id)
    assert busy_state is not None and busy_state["job"]["status"] == "requested"


async def test_a_stalled_failure_whose_announcement_was_lost_is_announced_again(
    replicas, new_events, fresh_database_url
) -> None:
    recorder = replicas[0]
    job = new_events()
    await recorder.record(job.requested(), Announcements().to(job.job_id))
    await stale(fresh_database_url, job)
    lost = Announcements()

    async def crash(event_cls: type, data: Any) -> None:
        raise ConnectionError("the process died after the commit, before the publish")

    with pytest.raises(ConnectionError):
        await recorder.fail_stalled(job.job_id, 600, crash)
    await stale(fresh_database_url, job)  # time passes
    sweeper = Sweeper(recorder.store, recorder, lost.to, stale_after=600, interval=60)
    assert await sweeper.sweep() == 1
    [(_, cls, data)] = lost.sent
    assert (cls, data.code) == (JobFailedEvent, STALLED)
    # Once the announcement came back through the stream, it is not announced again.
    await recorder.record(job.envelope(JobFailedEvent, data), lost.to(job.job_id))
    await stale(fresh_database_url, job)
    assert await sweeper.sweep() == 0
