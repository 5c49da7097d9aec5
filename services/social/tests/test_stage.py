"""The social stage on a real nats-server, through the real openai SDK against the scripted server."""

from __future__ import annotations

import pytest

from pressroom_contracts.events import (
    BlogCompletedEvent,
    BlogEdited,
    BlogEditedEvent,
    RegenerateRequested,
    RegenerateRequestedEvent,
    SocialEdited,
    SocialEditedEvent,
    Stage,
)
from pressroom_contracts.jobs import Platform
from pressroom_contracts.platforms import LINK_PLACEHOLDER, count
from pressroom_social import posts
from pressroom_social.platforms import RULES

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


async def test_one_post_per_platform_each_within_its_limit(social, bus, scripted_llm, new_job):
    scripted_llm.when("LinkedIn post promoting", "Rooftop solar is not a luxury any more.\n\n" + LONG[:900])
    scripted_llm.when("Threads post promoting", "Solar on your roof, batteries in your garage. #Solar")
    scripted_llm.when("X (Twitter) post promoting", SHORT)
    job = new_job(platforms=["linkedin", "x", "threads"])

    await bus.publish(job.blog())
    posted = by_platform(await bus.wait_for(job.job_id, "social.completed", 3))

    assert set(posted) == {"linkedin", "x", "threads"}
    for platform, (post,) in posted.items():
        assert post.version == 1 and post.limit == RULES[Platform(platform)].limit
        assert post.characters == count(Platform(platform), post.text) <= post.limit
        assert post.text.count(LINK_PLACEHOLDER) == 1 and "#" in post.text
        assert post.parts == []
    assert posted["x"][0].text.startswith("Rooftop solar pays off sooner")
    assert len(scripted_llm.requests) == 3
    usage = await bus.wait_for(job.job_id, "usage.recorded", 3)
    assert {u.data.call for u in usage} == {"social:linkedin:1", "social:x:1", "social:threads:1"}
    progress = [e.data.message for e in await bus.stored(job.job_id, "stage.progress")]
    assert "Writing the LinkedIn post" in progress


async def test_an_overlong_answer_is_sent_back_to_be_shortened(social, bus, scripted_llm, new_job):
    scripted_llm.when("Shorten this", SHORT)
    scripted_llm.reply(LONG)
    job = new_job(platforms=["x"])

    await bus.publish(job.blog())
    (post,) = await bus.wait_for(job.job_id, "social.completed")

    _, second = scripted_llm.requests
    assert "Shorten this X (Twitter) post to at most" in second.prompt
    assert "cheaper panels, smarter batteries" in second.prompt
    assert post.data.text.startswith("Rooftop solar pays off sooner than you think.")
    assert post.data.characters == count(Platform.x, post.data.text) <= 280
    usage = await bus.wait_for(job.job_id, "usage.recorded", 2)
    assert {u.data.call for u in usage} == {"social:x:1", "social:x:1:shorten"}


async def test_a_shortened_answer_still_too_long_is_cut(social, bus, scripted_llm, new_job):
    scripted_llm.reply(LONG)  # the shortened version too
    job = new_job(platforms=["x", "threads"])

    await bus.publish(job.blog())
    posted = by_platform(await bus.wait_for(job.job_id, "social.completed", 2))

    assert len(scripted_llm.requests) == 4  # a post and its shortening, for each platform
    for platform, (post,) in posted.items():
        assert post.characters == count(Platform(platform), post.text) <= RULES[Platform(platform)].limit
        assert post.text.startswith("Rooftop solar is finally for everyone")
        assert LINK_PLACEHOLDER in post.text


async def test_a_post_over_the_limit_is_never_published(social, bus, scripted_llm, new_job, monkeypatch):
    monkeypatch.setattr(posts.Draft, "fitted", lambda draft: draft)  # a bug in the cut
    scripted_llm.reply(LONG)
    job = new_job(platforms=["x"])

    await bus.publish(job.blog())
    (failed,) = await bus.wait_for(job.job_id, "stage.failed")

    assert failed.data.code == "post_over_limit" and not failed.data.retryable
    assert "the limit is 280" in failed.data.message
    assert await bus.stored(job.job_id, "social.completed") == []


async def test_an_x_thread_when_the_job_asks_for_one(social, bus, scripted_llm, new_job):
    scripted_llm.when("X thread", THREAD)
    scripted_llm.reply(SHORT)
    job = new_job(platforms=["x", "threads"], x_thread=True)

    await bus.publish(job.blog())
    posted = by_platform(await bus.wait_for(job.job_id, "social.completed", 2))

    (thread,) = posted["x"]
    total = len(thread.parts)
    assert 4 <= total <= 6
    for number, part in enumerate(thread.parts, 1):
        assert part.startswith(f"{number}/{total} ") and count(Platform.x, part) <= 280
    assert thread.text == "\n\n".join(thread.parts)
    assert thread.characters == max(count(Platform.x, p) for p in thread.parts)
    assert thread.parts[-1].count(LINK_PLACEHOLDER) == 1
    assert posted["threads"][0].parts == []  # only X gets a thread
    assert len(requests_for(scripted_llm, "X thread")) == 1


async def test_regenerating_the_x_post_writes_only_its_next_version(social, bus, scripted_llm, new_job):
    scripted_llm.reply(SHORT)
    job = new_job(platforms=["linkedin", "x"])
    await bus.publish(job.blog())
    await bus.wait_for(job.job_id, "social.completed", 2)
    # A person edited the blog (version 2) and the X post (version 2) since.
    edited = BlogEdited(
        version=2, title="Heat pumps", markdown="# Heat pumps\n\nHeat pumps warm homes.", word_count=5
    )
    await bus.publish(job.envelope(BlogEditedEvent, edited))
    text = "An edited post {link}"
    edit = SocialEdited(
        platform=Platform.x, version=2, text=text, characters=count(Platform.x, text), limit=280
    )
    await bus.publish(job.envelope(SocialEditedEvent, edit))
    scripted_llm.reply("Heat pumps now, solar next. #HeatPumps")

    await bus.publish(regenerate(job, Stage.image))  # not this stage's: ignored
    request = regenerate(job, Stage.social, Platform.x, instructions="Mention heat pumps")
    await bus.publish(request)
    await bus.wait_for(job.job_id, "social.completed", 3)
    await bus.settled()

    posted = by_platform(await bus.stored(job.job_id, "social.completed"))
    assert [p.version for p in posted["linkedin"]] == [1]
    assert [p.version for p in posted["x"]] == [1, 3]
    assert posted["x"][1].text.startswith("Heat pumps now, solar next.")
    assert len(scripted_llm.requests) == 3
    prompt = scripted_llm.requests[-1].prompt
    assert "Mention heat pumps" in prompt and "Heat pumps warm homes." in prompt

    # The same request delivered again (a redelivery after a crash): published again, not paid again.
    await bus.publish(request, dedup=False)
    await bus.settled()
    assert len(scripted_llm.requests) == 3
    assert len(await bus.stored(job.job_id, "social.completed")) == 3


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


async def test_a_regenerated_blog_does_not_redo_the_posts(social, bus, scripted_llm, new_job):
    job = new_job(platforms=["x"])
    blog = job.blog()
    again = job.envelope(BlogCompletedEvent, blog.data.model_copy(update={"version": 2, "regenerated": True}))

    await bus.publish(again)
    await bus.settled()

    assert scripted_llm.requests == []
    assert await bus.stored(job.job_id, "social.completed") == []


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
