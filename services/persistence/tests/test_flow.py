"""The service in-process against real nats-server and PostgreSQL: delivery, completion, failure, retries."""

from __future__ import annotations

import asyncio
import contextlib
import json

import asyncpg
import nats.errors
import pytest

from pressroom_contracts import subjects
from pressroom_contracts.events import JobCompletedEvent, JobFailedEvent, Stage
from pressroom_contracts.ids import new_job_id
from pressroom_contracts.topology import RESEARCH
from pressroom_runtime import deadletter
from pressroom_runtime.jobstates import JobStates
from pressroom_runtime.provisioning import consumer_config

pytestmark = pytest.mark.usefixtures("service")


async def _status(database_url: str, job_id: str) -> str | None:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval("SELECT status FROM jobs WHERE id = $1", job_id)
    finally:
        await conn.close()


async def test_every_event_twice_completes_the_job_once(bus, events, eventually, database_url) -> None:
    for event in events.full_run():
        await bus.publish(event, dedup=False)
        last = await bus.publish(event, dedup=False)  # what a redelivery looks like to the consumer

    job_id = events.job_id
    # Every input handled: whatever it announced was published before it was acknowledged.
    await bus.acked(last, "persistence")
    assert await bus.stored_count(job_id, "job.completed") == 1
    [completed] = await bus.stored(job_id, "job.completed")
    assert isinstance(completed, JobCompletedEvent)
    assert completed.data.blog_title == "A title"
    assert [p.value for p in completed.data.platforms] == ["linkedin", "x"]
    assert completed.data.image_key == f"{job_id}/cover.png"
    assert completed.producer.service == "persistence"
    assert completed.causation_id is not None

    reply = await bus.ask(subjects.QUERY_JOB, {"job_id": job_id})
    job = reply["job"]
    assert (job["status"], job["owner"], job["topic"], job["title"]) == (
        "completed", "alice", "Testing event-driven systems", "A title",
    )  # fmt: skip
    assert job["completed_at"] is not None and job["failure"] is None
    assert job["request"]["platforms"] == ["linkedin", "x"]
    assert job["cost_usd"] == pytest.approx(0.0125)  # the usage event came twice, counted once
    assert reply["usage_total"] == {
        "calls": 1,
        "input_tokens": 5,
        "output_tokens": 7,
        "images": 0,
        "cost_usd": 0.0125,
    }
    assert reply["research"]["skipped"] is True
    assert reply["blog"]["version"] == 1 and reply["blog"]["markdown"].startswith("# A title")
    assert sorted(reply["social"]) == ["linkedin", "x"]
    assert reply["social"]["x"]["limit"] == 280
    assert reply["images"]["object_key"] == f"{job_id}/cover.png"

    # The persistence service also logs its own announcement when it comes back through the stream.
    conn = await asyncpg.connect(database_url)
    try:
        logged = await eventually(
            lambda: conn.fetchval(
                "SELECT count(*) FROM events WHERE job_id = $1 AND type = 'job.completed'", job_id
            )
        )
        total = await conn.fetchval("SELECT count(*) FROM events WHERE job_id = $1", job_id)
    finally:
        await conn.close()
    assert logged == 1
    assert total == len(events.full_run()) + 1


async def test_stage_failed_fails_the_job_once(bus, events, eventually, database_url) -> None:
    job_id = events.job_id
    await bus.publish(events.requested())
    await bus.publish(events.research())
    await bus.publish(events.stage_failed(Stage.blog, "provider_auth"))
    await eventually(lambda: bus.stored_count(job_id, "job.failed"))
    # Later news changes nothing: a second failure, a late artifact.
    await bus.publish(events.stage_failed(Stage.image, "other"), dedup=False)
    await bus.publish(events.blog())
    await eventually(lambda: _blog_recorded(bus, job_id))

    assert await bus.stored_count(job_id, "job.failed") == 1
    [failed] = await bus.stored(job_id, "job.failed")
    assert isinstance(failed, JobFailedEvent)
    assert (failed.data.stage, failed.data.code, failed.data.message) == (
        Stage.blog,
        "provider_auth",
        "no key",
    )
    reply = await bus.ask(subjects.QUERY_JOB, {"job_id": job_id})
    assert reply["job"]["status"] == "failed"
    assert reply["job"]["failure"] == {"stage": "blog", "code": "provider_auth", "message": "no key"}
    assert await bus.stored_count(job_id, "job.completed") == 0


async def _blog_recorded(bus, job_id: str) -> bool:
    reply = await bus.ask(subjects.QUERY_JOB, {"job_id": job_id})
    return reply.get("blog") is not None


async def test_artifact_before_its_job_is_retried_until_the_job_exists(
    bus, events, eventually, database_url, nc
) -> None:
    job_id = events.job_id
    run = events.full_run()
    requested, rest = run[0], run[1:]
    # The gateway creates the job's state entry before it publishes job.requested: the job was requested,
    # so its events wait for it instead of being refused.
    await JobStates(nc).create(job_id, "alice")
    for event in rest:
        await bus.publish(event)

    async def asked_again_later() -> bool:
        info = await nc.jetstream().consumer_info(subjects.STREAM, "persistence")
        return bool(info.num_redelivered) or info.num_ack_pending >= len(rest)

    await eventually(asked_again_later)  # seen, and handed back for a paced redelivery
    assert await _status(database_url, job_id) is None
    await bus.publish(requested)
    await eventually(lambda: bus.stored_count(job_id, "job.completed"), timeout=30)
    assert await _status(database_url, job_id) == "completed"
    state = await JobStates(nc).get(job_id)
    assert state is not None and (state.owner, state.status) == ("alice", "completed")


async def test_events_of_a_job_nobody_requested_are_dead_lettered(bus, events, database_url, nc) -> None:
    job_id = events.job_id
    seqs = [await bus.publish(event, requested=False) for event in events.full_run()[1:]]
    await bus.acked(seqs[-1], "persistence")
    letters = [letter for _, letter in await deadletter.letters(nc, consumer="persistence", job_id=job_id)]
    assert sorted(letter.stream_seq for letter in letters) == seqs
    assert {letter.reason for letter in letters} == {"job_unknown"}
    assert await _status(database_url, job_id) is None
    assert await bus.stored_count(job_id, "job.failed") == 0


async def test_status_changes_are_mirrored_into_the_job_state_bucket(bus, new_events, eventually, nc) -> None:
    jobs = JobStates(nc)
    done, failed, cancelled = new_events(), new_events(), new_events()
    for event in done.full_run():
        await bus.publish(event)
    for job in (failed, cancelled):
        await bus.publish(job.requested(owner="alice"))
        await bus.publish(job.progress())
    await bus.publish(failed.stage_failed(Stage.blog, "provider_auth"))
    last = await bus.publish(cancelled.cancel_requested())
    await bus.acked(last, "persistence")

    async def status(job) -> str | None:
        state = await jobs.get(job.job_id)
        return state.status if state else None

    assert [await status(j) for j in (done, failed, cancelled)] == ["completed", "failed", "cancelled"]
    # Never backwards: a late progress event of the cancelled job leaves it cancelled.
    late = await bus.publish(cancelled.progress(step=2))
    await bus.acked(late, "persistence")
    assert await status(cancelled) == "cancelled"


async def test_malformed_message_is_dead_lettered_and_service_keeps_serving(
    bus, events, eventually, nc
) -> None:
    job_id = events.job_id
    garbage = [
        await bus.publish_raw(subjects.content(job_id, "blog.completed"), b"{not json"),
        await bus.publish_raw(
            subjects.content(job_id, "blog.completed"), json.dumps({"type": "blog.completed"}).encode()
        ),
    ]
    for event in events.full_run():
        last = await bus.publish(event)
    await eventually(lambda: bus.stored_count(job_id, "job.completed"))

    # Terminated with the reason and recorded, not left pending for redelivery; the job is unaffected.
    await bus.acked(last, "persistence")
    letters = [letter for _, letter in await deadletter.letters(nc, consumer="persistence", job_id=job_id)]
    assert sorted(letter.stream_seq for letter in letters) == garbage
    assert {letter.reason for letter in letters} == {"invalid_event"}
    assert await bus.stored_count(job_id, "job.failed") == 0


async def test_query_job_errors(bus, events) -> None:
    missing = await bus.ask(subjects.QUERY_JOB, {"job_id": new_job_id()})
    assert missing["error"]["code"] == "not_found"

    await bus.publish(events.requested(owner="alice"))
    for body in (b"{not json", b"", {"job_id": "has.dots"}, {"job_id": events.job_id, "extra": 1}, [1]):
        reply = await bus.ask(subjects.QUERY_JOB, body)
        assert reply["error"]["code"] == "invalid_request", body
        assert reply["error"]["message"]
    theirs = await bus.ask(subjects.QUERY_JOB, {"job_id": events.job_id, "owner": "mallory"})
    assert theirs["error"]["code"] == "not_found"


async def test_query_jobs_pages_newest_first(bus, new_events, eventually) -> None:
    owner = f"owner-{new_job_id()}"
    jobs = [new_events(topic=f"Topic number {i}") for i in range(5)]
    for job in jobs:
        await bus.publish(job.requested(owner=owner))
        await asyncio.sleep(0.002)  # distinct created_at; ties are ordered by id anyway

    async def listed() -> bool:
        reply = await bus.ask(subjects.QUERY_JOBS, {"owner": owner})
        return len(reply["jobs"]) == 5

    await eventually(listed)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        reply = await bus.ask(subjects.QUERY_JOBS, {"owner": owner, "limit": 2, "cursor": cursor})
        assert len(reply["jobs"]) <= 2
        seen += [job["id"] for job in reply["jobs"]]
        cursor = reply["next_cursor"]
        if cursor is None:
            break
    assert seen == [job.job_id for job in reversed(jobs)]  # newest first, each once
    first = (await bus.ask(subjects.QUERY_JOBS, {"owner": owner, "limit": 1}))["jobs"][0]
    assert (first["topic"], first["status"], first["owner"], first["title"]) == (
        "Topic number 4", "requested", owner, None,
    )  # fmt: skip

    assert await bus.ask(subjects.QUERY_JOBS, {"owner": owner, "status": "completed"}) == {
        "jobs": [],
        "next_cursor": None,
    }
    for bad in (
        {"limit": 101},
        {"limit": 0},
        {"status": "done"},
        {"cursor": "garbage!"},
        {"cursor": "WzFd"},
        b"nope",
    ):
        reply = await bus.ask(subjects.QUERY_JOBS, bad)
        assert reply["error"]["code"] == "invalid_request", bad


async def test_a_message_the_server_gives_up_on_is_dead_lettered_and_fails_its_job(bus, events, nc) -> None:
    """A research replica that takes the job and dies every time, before it can say anything: the server
    stops after max_deliver and says so; the keeper records it and the job fails with the reason."""
    js = nc.jetstream()
    # The research durable, for this job only (earlier tests left other jobs' requests pending on it).
    crashy = RESEARCH.model_copy(
        update={
            "ack_wait_seconds": 1,
            "max_deliver": 2,
            "filter_subjects": (subjects.content(events.job_id, "job.requested"),),
        }
    )
    await js.delete_consumer(subjects.STREAM, RESEARCH.durable)
    await js.add_consumer(subjects.STREAM, consumer_config(crashy))
    try:
        await bus.publish(events.requested(owner="alice"))
        taker = await js.pull_subscribe_bind(durable=RESEARCH.durable, stream=subjects.STREAM)
        for _ in range(crashy.max_deliver):
            await taker.fetch(1, timeout=10)  # taken, never acknowledged: a crash
        # A replica still asking is what makes the server look at the message again and give it up.
        with contextlib.suppress(nats.errors.TimeoutError):
            await taker.fetch(1, timeout=3)
        await taker.unsubscribe()
        [failed] = await bus.wait_for(events.job_id, "job.failed", timeout=30)
    finally:
        await js.delete_consumer(subjects.STREAM, RESEARCH.durable)
        await js.add_consumer(subjects.STREAM, consumer_config(RESEARCH))
    assert isinstance(failed, JobFailedEvent)
    assert (failed.data.stage, failed.data.code) == (Stage.research, deadletter.MAX_DELIVERIES)
    [letter] = [letter for _, letter in await deadletter.letters(nc, job_id=events.job_id)]
    assert (letter.consumer, letter.reason, letter.deliveries) == ("research", "max_deliveries", 2)
    assert letter.subject == subjects.content(events.job_id, "job.requested")
    assert json.loads(letter.data)["type"] == "job.requested"
