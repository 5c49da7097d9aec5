"""The social handler table on a FakeStageContext, through the real openai SDK against the scripted
server: posts per platform within their limits, shortening, threads, regeneration."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pressroom_contracts.events import (
    BlogCompletedEvent,
    Envelope,
    JobRequested,
    JobRequestedEvent,
    RegenerateRequested,
    RegenerateRequestedEvent,
    SeoPack,
    SocialCompletedEvent,
    Stage,
)
from pressroom_contracts.jobs import Platform
from pressroom_contracts.platforms import LINK_PLACEHOLDER, count
from pressroom_contracts.voice import VoiceProfile
from pressroom_runtime.errors import PermanentError
from pressroom_runtime.stage import Handler
from pressroom_social.copywriter import Copywriter
from pressroom_social.handlers import handlers
from pressroom_social.platforms import RULES
from pressroom_testkit import FakeStageContext, JobEvents, ScriptedLLM

LONG = "Rooftop solar is finally for everyone: cheaper panels, smarter batteries, lower bills. " * 8
SHORT = "Rooftop solar pays off sooner than you think. #Solar"
THREAD = (
    "Rooftop solar got cheap. Here is why it matters.\n\n"
    + "Panels cost a fraction of what they did a decade ago, and installers are everywhere. " * 5
    + "\n\nBatteries store the midday surplus for the evening.\n\nThe result: lower bills for years."
)


@pytest.fixture
def table(scripted_llm: ScriptedLLM) -> dict[type, Handler]:
    return handlers(Copywriter(scripted_llm.text_model(), max_tokens=400))


async def handle(
    table: dict[type, Handler], event: Envelope, history: list[Envelope] | None = None
) -> FakeStageContext:
    ctx = FakeStageContext.handling(event, Stage.social, history=history or [])
    await table[type(event)](event, ctx)
    return ctx


def regenerate(
    job: JobEvents, stage: Stage, platform: Platform | None = None, instructions: str | None = None
) -> Envelope:
    return job.envelope(
        RegenerateRequestedEvent,
        RegenerateRequested(stage=stage, platform=platform, instructions=instructions),
    )


def by_platform(ctx: FakeStageContext) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for post in ctx.data(SocialCompletedEvent):
        assert post.platform not in found, "one post per platform"
        found[post.platform] = post
    return found


def requests_for(llm: ScriptedLLM, text: str) -> list:
    return [r for r in llm.requests if text in r.prompt]


async def test_one_post_per_platform_each_within_its_limit(table, scripted_llm, new_job):
    scripted_llm.when("LinkedIn post promoting", "Rooftop solar is not a luxury any more.\n\n" + LONG[:900])
    scripted_llm.when("Threads post promoting", "Solar on your roof, batteries in your garage. #Solar")
    scripted_llm.when("X (Twitter) post promoting", SHORT)
    job = new_job(platforms=["linkedin", "x", "threads"])

    ctx = await handle(table, job.blog())

    posted = by_platform(ctx)
    assert set(posted) == {"linkedin", "x", "threads"}
    for platform, post in posted.items():
        assert post.version == 1 and post.limit == RULES[Platform(platform)].limit
        assert post.characters == count(Platform(platform), post.text) <= post.limit
        assert post.text.count(LINK_PLACEHOLDER) == 1 and "#" in post.text
        assert post.parts == []
    assert posted["x"].text.startswith("Rooftop solar pays off sooner")
    assert len(scripted_llm.requests) == 3
    assert set(ctx.usage_calls) == {"social:linkedin:1", "social:x:1", "social:threads:1"}
    assert "Writing the LinkedIn post" in ctx.progress_messages
    # Every model call only after checking the job is still on.
    for call in ctx.usage_calls:
        assert "ensure_active" in ctx.actions[: ctx.actions.index(f"usage {call}")]


async def test_an_overlong_answer_is_sent_back_to_be_shortened(table, scripted_llm, new_job):
    scripted_llm.when("Shorten this", SHORT)
    scripted_llm.reply(LONG)
    job = new_job(platforms=["x"])

    ctx = await handle(table, job.blog())

    post = by_platform(ctx)["x"]
    _, second = scripted_llm.requests
    assert "Shorten this X (Twitter) post to at most" in second.prompt
    assert "cheaper panels, smarter batteries" in second.prompt
    assert post.text.startswith("Rooftop solar pays off sooner than you think.")
    assert post.characters == count(Platform.x, post.text) <= 280
    assert ctx.usage_calls == ["social:x:1", "social:x:1:shorten"]


async def test_a_shortened_answer_still_too_long_is_cut(table, scripted_llm, new_job):
    scripted_llm.reply(LONG)  # the shortened version too
    job = new_job(platforms=["x", "threads"])

    ctx = await handle(table, job.blog())

    assert len(scripted_llm.requests) == 4  # a post and its shortening, for each platform
    for platform, post in by_platform(ctx).items():
        assert post.characters == count(Platform(platform), post.text) <= RULES[Platform(platform)].limit
        assert post.text.startswith("Rooftop solar is finally for everyone")
        assert LINK_PLACEHOLDER in post.text


async def test_an_x_thread_when_the_job_asks_for_one(table, scripted_llm, new_job):
    scripted_llm.when("X thread", THREAD)
    scripted_llm.reply(SHORT)
    job = new_job(platforms=["x", "threads"], x_thread=True)

    posted = by_platform(await handle(table, job.blog()))

    thread = posted["x"]
    total = len(thread.parts)
    assert 4 <= total <= 6
    for number, part in enumerate(thread.parts, 1):
        assert part.startswith(f"{number}/{total} ") and count(Platform.x, part) <= 280
    assert thread.text == "\n\n".join(thread.parts)
    assert thread.characters == max(count(Platform.x, p) for p in thread.parts)
    assert thread.parts[-1].count(LINK_PLACEHOLDER) == 1
    assert posted["threads"].parts == []  # only X gets a thread
    assert len(requests_for(scripted_llm, "X thread")) == 1


async def test_regenerating_the_x_post_writes_only_its_next_version(table, scripted_llm, new_job):
    job = new_job(platforms=["linkedin", "x"])
    # Posts written from the blog; since then a person edited the blog (v2) and the X post (v2).
    history = [
        job.blog(),
        job.social("linkedin"),
        job.social("x"),
        job.blog_edited(version=2, title="Heat pumps", markdown="# Heat pumps\n\nHeat pumps warm homes."),
        job.social_edited("x", version=2, text="An edited post {link}"),
    ]
    scripted_llm.reply("Heat pumps now, solar next. #HeatPumps")
    request = regenerate(job, Stage.social, Platform.x, instructions="Mention heat pumps")

    ctx = await handle(table, request, history)

    posted = by_platform(ctx)
    assert list(posted) == ["x"] and posted["x"].version == 3
    assert posted["x"].text.startswith("Heat pumps now, solar next.")
    [prompt] = [r.prompt for r in scripted_llm.requests]
    assert "Mention heat pumps" in prompt and "Heat pumps warm homes." in prompt

    # The same request again (a redelivery after a crash): announced again, not paid again.
    again = FakeStageContext.handling(request, Stage.social, history=ctx.history, attempt=2)
    await table[type(request)](request, again)
    assert again.actions == ["republish social.completed"]
    assert len(scripted_llm.requests) == 1


async def test_regenerating_every_post_without_a_platform(table, scripted_llm, new_job):
    scripted_llm.reply(SHORT)
    job = new_job(platforms=["linkedin", "x"])
    history = [job.blog(), job.social("linkedin"), job.social("x")]

    posted = by_platform(await handle(table, regenerate(job, Stage.social), history))

    assert {p: post.version for p, post in posted.items()} == {"linkedin": 2, "x": 2}


async def test_another_stages_regenerate_is_ignored(table, scripted_llm, new_job):
    job = new_job(platforms=["x"])
    ctx = await handle(table, regenerate(job, Stage.image), [job.blog()])
    assert ctx.actions == [] and scripted_llm.requests == []


async def test_regenerate_before_the_blog_fails_clearly(table, new_job):
    job = new_job(platforms=["x"])
    with pytest.raises(PermanentError) as failure:
        await handle(table, regenerate(job, Stage.social, Platform.x))
    assert failure.value.code == "not_ready"


async def test_a_regenerated_blog_does_not_redo_the_posts(table, scripted_llm, new_job):
    job = new_job(platforms=["x"])
    blog = job.blog()
    again = job.envelope(BlogCompletedEvent, blog.data.model_copy(update={"version": 2, "regenerated": True}))

    ctx = await handle(table, again, [blog])

    assert scripted_llm.requests == [] and ctx.published == []


async def test_posts_written_before_a_crash_are_announced_again_and_the_rest_written(
    table, scripted_llm, new_job
):
    scripted_llm.reply(SHORT)
    job = new_job(platforms=["linkedin", "x"])
    blog = job.blog()
    first = FakeStageContext.handling(blog, Stage.social)
    await first.emit(SocialCompletedEvent, job.social("linkedin").data)  # then the process died

    again = FakeStageContext.handling(blog, Stage.social, history=first.history, attempt=2)
    await table[type(blog)](blog, again)

    assert [p.platform for p in again.data(SocialCompletedEvent)] == ["linkedin", "x"]
    assert again.actions[0] == "republish social.completed"
    assert [r.prompt for r in scripted_llm.requests if "LinkedIn" in r.prompt] == []


async def test_each_post_is_checked_and_carries_what_the_checks_found(table, scripted_llm, new_job):
    scripted_llm.when(
        "LinkedIn post promoting",
        "<blockquote>Rooftop solar pays off sooner than you think, and the panels last for decades.</blockquote>\n"
        "<p>Compare installers on https://capterra.com/solar before you sign anything.</p>",
    )
    scripted_llm.when(
        "X (Twitter) post promoting",
        "<h3>Solar</h3> Solarmodule auf dem Dach rechnen sich schon nach wenigen Jahren für jeden Hausbesitzer.",
    )
    job = new_job(platforms=["linkedin", "x"])

    posted = by_platform(await handle(table, job.blog()))

    linkedin, x = posted["linkedin"], posted["x"]
    assert "<" not in linkedin.text and "capterra" not in linkedin.text
    # Plain text: no quote mark left.
    assert linkedin.text.startswith("Rooftop solar pays off sooner than you think")
    assert linkedin.checks.html_tags == ["blockquote", "p"]
    assert linkedin.checks.removed_links == ["https://capterra.com/solar"]
    assert (linkedin.checks.detected_language, linkedin.checks.language_matches) == ("en", True)
    assert "<h3>" not in x.text and x.checks.html_tags == ["h3"]
    assert (x.checks.language, x.checks.detected_language, x.checks.language_matches) == ("en", "de", False)


async def test_the_owners_link_template_fills_the_link_and_its_voice_shapes_the_prompt(
    table, scripted_llm, new_job
):
    scripted_llm.reply(SHORT)
    job = new_job(platforms=["linkedin", "x"])
    voice = VoiceProfile(description="Cheerful and brief.", edits=["Our roofs, our power."])
    requested = JobRequested(
        request=job.request, owner="acme", voice=voice, link_template="https://blog.example.com/{slug}"
    )
    blog = job.blog(title="Rooftop solar")
    blog.data.seo = SeoPack(
        title="Rooftop solar", meta_description="d", slug="rooftop-solar", reading_minutes=1
    )

    posted = by_platform(await handle(table, blog, [job.envelope(JobRequestedEvent, requested)]))

    for platform, post in posted.items():
        assert "https://blog.example.com/rooftop-solar" in post.text and LINK_PLACEHOLDER not in post.text
        assert post.characters == count(Platform(platform), post.text) <= RULES[Platform(platform)].limit
    assert all(
        "Cheerful and brief." in r.prompt and "Our roofs, our power." in r.prompt
        for r in scripted_llm.requests
    )


async def test_without_a_link_template_the_placeholder_stays_for_the_export_to_drop(
    table, scripted_llm, new_job
):
    scripted_llm.reply(SHORT)
    job = new_job(platforms=["x"])
    requested = JobRequested(request=job.request, owner="someone-else")

    posted = by_platform(await handle(table, job.blog(), [job.envelope(JobRequestedEvent, requested)]))

    assert LINK_PLACEHOLDER in posted["x"].text
    assert not any("Cheerful" in r.prompt for r in scripted_llm.requests)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param("   \n", id="empty"),
        pytest.param("(short version) {link} #Solar", id="junk: Gemma 3 270M's"),
        pytest.param("...\nSolar Energy\n\n{link}", id="a label: Gemma 3 270M's"),
    ],
)
async def test_a_post_the_model_left_empty_shares_the_blogs_title(table, scripted_llm, new_job, answer):
    scripted_llm.reply(answer)
    job = new_job(platforms=["x"])

    ctx = await handle(table, job.blog(title="Rooftop solar, explained"))

    post = by_platform(ctx)["x"]
    assert post.text.startswith("Rooftop solar, explained") and LINK_PLACEHOLDER in post.text
    assert "The X post came back empty: it shares the blog post's title" in ctx.progress_messages


async def test_the_platforms_posts_are_written_at_once(table, scripted_llm, new_job):
    scripted_llm.hang(times=1)  # the first post's model call gets no answer
    job = new_job(platforms=["linkedin", "x"])
    writing = asyncio.create_task(handle(table, job.blog()))
    try:
        # The other platform's call is made while the first still waits: they do not queue.
        await asyncio.to_thread(scripted_llm.wait_for_requests, 2)
        assert not writing.done()
    finally:
        writing.cancel()
        scripted_llm.release()
        await asyncio.gather(writing, return_exceptions=True)
