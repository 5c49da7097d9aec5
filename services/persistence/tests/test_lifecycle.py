"""Edits, regenerations, cancels and budgets through the running service, on real nats-server and PostgreSQL."""

from __future__ import annotations

import asyncpg
import pytest

from pressroom_contracts import subjects
from pressroom_contracts.events import JobCancelledEvent, JobFailedEvent, Stage

pytestmark = pytest.mark.usefixtures("service")


async def _job(bus, job_id: str) -> dict:
    return await bus.ask(subjects.QUERY_JOB, {"job_id": job_id})


async def _logged(database_url: str, job_id: str, event_type: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM events WHERE job_id = $1 AND type = $2", job_id, event_type
        )
    finally:
        await conn.close()


async def test_edits_and_regenerations_are_stored_as_versions(bus, events, eventually, database_url) -> None:
    job_id = events.job_id
    for event in events.full_run():
        await bus.publish(event)
    await eventually(lambda: bus.stored_count(job_id, "job.completed"))

    later = [
        events.blog_edited(2, editor="bob"),
        events.blog_regenerated(3),
        events.social_regenerated("x", 2, parts=["1/2 A thread", "2/2 The end"]),
        events.social_edited("linkedin", 2, text="My own words", editor="bob"),
        events.image_regenerated(2),
    ]
    for event in later:
        await bus.publish(event, dedup=False)
        last = await bus.publish(event, dedup=False)  # each one twice, as after a redelivery

    async def all_versions() -> dict | None:
        reply = await _job(bus, job_id)
        versions = (
            len(reply["blog"]["versions"]),
            *(len(post["versions"]) for post in reply["social"].values()),
            len(reply["images"]["versions"]),
        )
        return reply if versions == (3, 2, 2, 2) else None

    # Every input handled: anything it (wrongly) announced was published before it was acknowledged.
    await bus.acked(last, "persistence")
    reply = await eventually(all_versions)
    assert await bus.stored_count(job_id, "job.completed") == 1
    assert reply["job"]["status"] == "completed"

    blog = reply["blog"]
    assert (blog["version"], blog["origin"], blog["title"]) == (3, "regenerated", "A new title")
    assert [(v["version"], v["origin"], v["editor"]) for v in blog["versions"]] == [
        (1, "generated", None), (2, "edited", "bob"), (3, "regenerated", None),
    ]  # fmt: skip
    x, linkedin = reply["social"]["x"], reply["social"]["linkedin"]
    assert (x["version"], x["origin"], x["parts"]) == (2, "regenerated", ["1/2 A thread", "2/2 The end"])
    assert (linkedin["version"], linkedin["origin"], linkedin["editor"], linkedin["text"]) == (
        2, "edited", "bob", "My own words",
    )  # fmt: skip
    assert [v["origin"] for v in linkedin["versions"]] == ["generated", "edited"]
    image = reply["images"]
    assert (image["version"], image["origin"], image["object_key"]) == (
        2,
        "regenerated",
        f"{job_id}/cover-2.png",
    )
    assert [(v["name"], v["width"], v["height"]) for v in image["variants"]] == [("square", 1080, 1080)]

    # Old versions are kept as they were, and nothing was stored twice.
    conn = await asyncpg.connect(database_url)
    try:
        first = await conn.fetchrow(
            "SELECT origin, title, model FROM blog_posts WHERE job_id = $1 AND version = 1", job_id
        )
        counts = await conn.fetchrow(
            """SELECT (SELECT count(*) FROM blog_posts WHERE job_id = $1) AS blog,
                      (SELECT count(*) FROM social_posts WHERE job_id = $1) AS social,
                      (SELECT count(*) FROM images WHERE job_id = $1) AS images""",
            job_id,
        )
    finally:
        await conn.close()
    assert tuple(first) == ("generated", "A title", "m")
    assert tuple(counts) == (3, 4, 2)


async def test_cancel_of_a_running_job_announces_job_cancelled_once(bus, events, eventually) -> None:
    job_id = events.job_id
    await bus.publish(events.requested(owner="alice"))
    await bus.publish(events.progress())
    await eventually(lambda: _status_is(bus, job_id, "running"))

    cancel = events.cancel_requested("wrong topic")
    await bus.publish(cancel, dedup=False)
    await bus.publish(cancel, dedup=False)
    await eventually(lambda: bus.stored_count(job_id, "job.cancelled"))
    # What the stages were still doing arrives afterwards: stored, but the job stays cancelled.
    for event in events.full_run()[2:]:
        last = await bus.publish(event)
    await bus.acked(last, "persistence")
    assert await _has_every_artifact(bus, job_id)

    assert await bus.stored_count(job_id, "job.cancelled") == 1
    assert await bus.stored_count(job_id, "job.completed") == 0
    [cancelled] = await bus.stored(job_id, "job.cancelled")
    assert isinstance(cancelled, JobCancelledEvent)
    assert (cancelled.data.reason, cancelled.causation_id, cancelled.producer.service) == (
        "wrong topic", cancel.id, "persistence",
    )  # fmt: skip
    job = (await _job(bus, job_id))["job"]
    assert (job["status"], job["cancel_reason"]) == ("cancelled", "wrong topic")


async def test_cancel_of_a_completed_job_changes_nothing(bus, events, eventually, database_url) -> None:
    job_id = events.job_id
    for event in events.full_run():
        await bus.publish(event)
    await eventually(lambda: bus.stored_count(job_id, "job.completed"))
    cancel = await bus.publish(events.cancel_requested())
    await bus.acked(cancel, "persistence")
    assert await _logged(database_url, job_id, "cancel.requested") == 1
    assert await bus.stored_count(job_id, "job.cancelled") == 0
    job = (await _job(bus, job_id))["job"]
    assert (job["status"], job["cancel_reason"]) == ("completed", None)


async def test_a_job_over_its_budget_fails_once(bus, new_events, eventually) -> None:
    events = new_events(budget_usd=0.01)
    job_id = events.job_id
    await bus.publish(events.requested())
    await bus.publish(events.research())
    await bus.publish(events.usage("draft", 0.006))
    over = events.usage("revise", 0.0063)
    await bus.publish(over, dedup=False)
    await bus.publish(over, dedup=False)
    await eventually(lambda: bus.stored_count(job_id, "job.failed"))
    # A call that was already under way when the job failed: its cost counts, the job fails only once.
    await bus.publish(events.usage("late", 0.002))
    last = await bus.publish(events.blog())
    await bus.acked(last, "persistence")
    assert await _cost_is(bus, job_id, 0.0143)

    assert await bus.stored_count(job_id, "job.failed") == 1
    [failed] = await bus.stored(job_id, "job.failed")
    assert isinstance(failed, JobFailedEvent)
    assert (failed.data.stage, failed.data.code, failed.data.message) == (
        Stage.blog, "budget_exceeded", "estimated cost $0.0123 exceeded the job's budget of $0.0100",
    )  # fmt: skip
    reply = await _job(bus, job_id)
    job = reply["job"]
    assert (job["status"], job["budget_usd"], job["failure"]["code"]) == ("failed", 0.01, "budget_exceeded")
    assert reply["usage_total"]["calls"] == 3
    assert reply["blog"]["version"] == 1  # stored for the record
    assert await bus.stored_count(job_id, "job.completed") == 0


async def _status_is(bus, job_id: str, status: str) -> bool:
    return (await _job(bus, job_id)).get("job", {}).get("status") == status


async def _has_every_artifact(bus, job_id: str) -> bool:
    reply = await _job(bus, job_id)
    return bool(reply.get("blog") and len(reply.get("social", {})) == 2 and reply.get("images"))


async def _cost_is(bus, job_id: str, cost: float) -> bool:
    return (await _job(bus, job_id))["job"]["cost_usd"] == pytest.approx(cost)
