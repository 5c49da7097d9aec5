"""The social service on a real nats-server: what delivery adds to the logic (a refused post or a
permanent model error announced as stage.failed, a redelivery that does not pay again, a stop read from
the stream). The logic is tested on a fake context in test_handlers.py."""

from __future__ import annotations

import pytest

from pressroom_contracts.events import (
    RegenerateRequested,
    RegenerateRequestedEvent,
    Stage,
)
from pressroom_contracts.jobs import Platform
from pressroom_social import posts

LONG = "Rooftop solar is finally for everyone: cheaper panels, smarter batteries, lower bills. " * 8
SHORT = "Rooftop solar pays off sooner than you think. #Solar"
THREAD = (
    "Rooftop solar got cheap. Here is why it matters.\n\n"
    + "Panels cost a fraction of what they did a decade ago, and installers are everywhere. " * 5
    + "\n\nBatteries store the midday surplus for the evening.\n\nThe result: lower bills for years."
)


def requests_for(llm, text: str) -> list:
    return [r for r in llm.requests if text in r.prompt]


def regenerate(job, stage: Stage, platform: Platform | None = None, instructions: str | None = None):
    return job.envelope(
        RegenerateRequestedEvent,
        RegenerateRequested(stage=stage, platform=platform, instructions=instructions),
    )


def by_platform(events) -> dict[str, list]:
    found: dict[str, list] = {}
    for event in events:
        found.setdefault(event.data.platform, []).append(event.data)
    return found


async def test_a_post_over_the_limit_is_never_published(social, bus, scripted_llm, new_job, monkeypatch):
    monkeypatch.setattr(posts.Draft, "fitted", lambda draft: draft)  # a bug in the cut
    scripted_llm.reply(LONG)
    job = new_job(platforms=["x"])

    await bus.publish(job.blog())
    (failed,) = await bus.wait_for(job.job_id, "stage.failed")

    assert failed.data.code == "post_over_limit" and not failed.data.retryable
    assert "the limit is 280" in failed.data.message
    assert await bus.stored(job.job_id, "social.completed") == []


async def test_the_same_blog_delivered_twice_costs_one_call_per_platform(social, bus, scripted_llm, new_job):
    scripted_llm.reply(SHORT)
    job = new_job(platforms=["linkedin", "x"])
    blog = job.blog()

    await bus.publish(blog, dedup=False)
    await bus.publish(blog, dedup=False)
    await bus.wait_for(job.job_id, "social.completed", 2)
    await bus.settled()

    assert len(scripted_llm.requests) == 2
    assert len(await bus.stored(job.job_id, "social.completed")) == 2


async def test_a_permanent_model_error_fails_the_stage(social, bus, scripted_llm, new_job):
    scripted_llm.fail(401)
    job = new_job(platforms=["x"])

    await bus.publish(job.blog())
    (failed,) = await bus.wait_for(job.job_id, "stage.failed")

    assert failed.data.stage == Stage.social
    assert failed.data.code == "provider_auth" and not failed.data.retryable
    assert len(scripted_llm.requests) == 1
    assert await bus.stored(job.job_id, "social.completed") == []


@pytest.mark.parametrize("stop", ["job_cancelled", "job_failed"])
async def test_no_model_call_once_the_job_stopped(social, bus, scripted_llm, new_job, stop):
    job = new_job(platforms=["linkedin", "x"])
    await bus.publish(getattr(job, stop)())

    await bus.publish(job.blog())
    await bus.publish(regenerate(job, Stage.social, Platform.x))
    await bus.settled()

    assert scripted_llm.requests == []
    assert await bus.stored(job.job_id, "social.completed") == []
    assert await bus.stored(job.job_id, "stage.progress") == []
