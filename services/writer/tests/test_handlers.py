"""The writer's handler table on a FakeStageContext, with the scripted model behind the real openai SDK."""

from __future__ import annotations

import pytest

from pressroom_contracts.events import (
    BlogCompletedEvent,
    JobRequested,
    JobRequestedEvent,
    RegenerateRequested,
    RegenerateRequestedEvent,
    ResearchCompleted,
    ResearchCompletedEvent,
    Source,
    Stage,
)
from pressroom_contracts.jobs import JobRequest
from pressroom_contracts.voice import VoiceProfile
from pressroom_runtime.errors import JobStopped, PermanentError
from pressroom_runtime.stage import Handler
from pressroom_testkit import FakeStageContext, JobEvents, ScriptedLLM
from pressroom_writer.handlers import handlers
from pressroom_writer.writer import Writer

OUTLINE = "# Sunny roofs\n## Why panels pay [1]\n## Storing the surplus [2]\n"
SECTION = "Panels on the roof pay for themselves [1]. Storage helps at night [2]. Made up [9]."
# What the model answers once the first section is written (a post says each thing once).
NEXT_SECTION = "Batteries keep the midday surplus for the evening [2]."


@pytest.fixture
def table(scripted_llm: ScriptedLLM) -> dict[type, Handler]:
    return handlers(Writer(scripted_llm.text_model(), max_tokens=2048))


SOURCES = [
    Source(
        title="Rooftop panels", location="solar.md", snippet="Panels on the roof pay for themselves.", score=2
    ),
    Source(
        title="Home batteries", location="https://b.example/x", snippet="Storage helps at night.", score=1
    ),
]


def research_of(events: JobEvents) -> ResearchCompletedEvent:
    event = events.envelope(
        ResearchCompletedEvent,
        ResearchCompleted(request=events.request, sources=SOURCES, provider="knowledge-base"),
    )
    assert isinstance(event, ResearchCompletedEvent)
    return event


def job() -> JobEvents:
    return JobEvents.new(JobRequest(topic="Rooftop solar for homes", length="short"))


def regenerate(events: JobEvents, stage: Stage = Stage.blog) -> RegenerateRequestedEvent:
    event = events.envelope(RegenerateRequestedEvent, RegenerateRequested(stage=stage))
    assert isinstance(event, RegenerateRequestedEvent)
    return event


async def test_research_becomes_an_outline_then_streamed_and_cited_sections(table, scripted_llm):
    scripted_llm.when("outline of", OUTLINE)
    scripted_llm.when(lambda request: "Made up" in request.prompt, NEXT_SECTION)  # the first is written
    scripted_llm.reply(SECTION)
    events = job()
    research = research_of(events)
    ctx = FakeStageContext.handling(research, Stage.blog, history=[events.requested()])

    await table[type(research)](research, ctx)

    [blog] = ctx.data(BlogCompletedEvent)
    assert (blog.version, blog.regenerated, blog.title) == (1, False, "Sunny roofs")
    assert blog.seo.slug == "sunny-roofs" and blog.seo.json_ld["@type"] == "Article"
    assert [(s.heading, s.sources) for s in blog.outline] == [
        ("Why panels pay", [1]),
        ("Storing the surplus", [2]),
    ]
    assert blog.markdown.startswith("# Sunny roofs\n\n## Why panels pay\n\nPanels on the roof")
    assert "\n\n## Storing the surplus\n\n" in blog.markdown
    assert [c.number for c in blog.citations] == [1, 2] and "[9]" not in blog.markdown
    # What watchers saw, piece by piece at the right offsets: the same post as it was written.
    assert ctx.streamed.startswith("# Sunny roofs\n\n## Why panels pay\n\nPanels on the roof")
    assert "## Storing the surplus" in ctx.streamed and len(ctx.deltas) > 4
    assert ctx.usage_calls == ["blog:1:outline", "blog:1:section1", "blog:1:section2"]
    # The sections' tokens (word-counted here).
    assert blog.usage.output_tokens == len(SECTION.split()) + len(NEXT_SECTION.split())
    assert ctx.actions[:2] == ["ensure_active", "progress Planning a short blog post with scripted-model"]
    # Each section's call only after checking the job is still on.
    assert ctx.actions[ctx.actions.index("usage blog:1:section2") - 2] == "ensure_active"
    # Each section is asked with its own sources and what was written before it.
    second = scripted_llm.requests[2].prompt
    assert (
        "“Storing the surplus”" in second and "[2] Home batteries" in second and "[1] Rooftop" not in second
    )
    assert "Panels on the roof pay" in second


async def test_a_stopped_job_is_not_written(table, scripted_llm):
    events = job()
    research = events.research()
    ctx = FakeStageContext.handling(research, Stage.blog, history=[events.job_cancelled()])
    with pytest.raises(JobStopped):
        await table[type(research)](research, ctx)
    assert scripted_llm.requests == [] and ctx.published == []


async def test_a_redelivered_input_is_announced_again_not_written_again(table, scripted_llm):
    events = job()
    research = events.research()
    first = FakeStageContext.handling(research, Stage.blog)
    await table[type(research)](research, first)
    again = FakeStageContext.handling(research, Stage.blog, history=first.history, attempt=2)

    await table[type(research)](research, again)

    assert again.actions == ["republish blog.completed"]
    assert len(scripted_llm.requests) == len(first.usage_calls)  # nothing asked again


async def test_regenerate_writes_the_next_version_from_the_same_research(table, scripted_llm):
    scripted_llm.when("outline of", OUTLINE)
    scripted_llm.reply(SECTION)
    events = job()
    history = [research_of(events), events.blog(version=1), events.blog_edited(version=2)]
    request = regenerate(events)
    ctx = FakeStageContext.handling(request, Stage.blog, history=history)

    await table[type(request)](request, ctx)

    [blog] = ctx.data(BlogCompletedEvent)
    assert (blog.version, blog.regenerated) == (3, True)
    assert ctx.usage_calls[0] == "blog:3:outline"
    assert "[2] Home batteries" in scripted_llm.requests[0].prompt  # the same sources, numbered as before


async def test_regenerate_of_another_stage_is_not_the_writers(table, scripted_llm):
    events = job()
    request = regenerate(events, Stage.image)
    ctx = FakeStageContext.handling(request, Stage.blog, history=[events.research()])
    await table[type(request)](request, ctx)
    assert ctx.actions == [] and scripted_llm.requests == []


async def test_regenerate_before_research_fails_clearly(table):
    events = job()
    request = regenerate(events)
    with pytest.raises(PermanentError) as failure:
        await table[type(request)](request, FakeStageContext.handling(request, Stage.blog))
    assert failure.value.code == "not_ready"


COPIED = (
    "Panel prices have fallen by about ninety percent since the year two thousand and ten, and panels "
    "usually carry long performance warranties and lose around half a percent of their output every year."
)
MESSY = (
    "<h3>Why it pays</h3>\n<p>Panels on the roof <b>pay for themselves</b> [1]. Night storage of surplus "
    "power helps [2]. Office chairs matter for remote teams [1]. Invented study [7].</p>\n"
    "Compare offers on https://capterra.com/solar or [Google Maps](https://google.com/maps), or read "
    f"[the battery guide](https://b.example/x).\n\n{COPIED}"
)
GERMAN = (
    "Solarmodule auf dem Dach rechnen sich schon nach wenigen Jahren, und Batterien speichern den "
    "Überschuss für die Nacht. Viele Hausbesitzer sparen damit jedes Jahr viel Geld."
)
ENGLISH = "Panels on the roof pay for themselves within years [1], and storage helps at night [2]."


def checked_sources() -> list[Source]:
    return [
        SOURCES[0],
        Source(
            title="Home batteries",
            location="https://b.example/x",
            snippet="Storage of surplus power helps at night.",
            score=1,
        ),
        Source(
            title="Panel costs",
            location="costs.md",
            snippet=COPIED + " Inverters are replaced once.",
            score=1,
        ),
    ]


async def test_every_check_before_publishing_does_its_work_and_blog_completed_records_it(table, scripted_llm):
    scripted_llm.when("outline of", "# Sunny roofs\n## Why it pays [1, 2, 3]\n## Getting started []\n")
    scripted_llm.when("“Why it pays”", MESSY)
    scripted_llm.reply(ENGLISH)
    events = job()
    research = events.envelope(
        ResearchCompletedEvent,
        ResearchCompleted(request=events.request, sources=checked_sources(), provider="knowledge-base"),
    )
    ctx = FakeStageContext.handling(research, Stage.blog)

    await table[type(research)](research, ctx)

    [blog] = ctx.data(BlogCompletedEvent)
    checks = blog.checks
    body = blog.markdown.split("## Sources")[0]
    # HTML became Markdown.
    assert checks.html_tags == ["h3", "p", "b"] and "<" not in blog.markdown
    assert "**pay for themselves**" in body
    # Links research did not return are gone; the one it returned stays.
    assert checks.removed_links == ["https://google.com/maps", "https://capterra.com/solar"]
    assert "capterra" not in blog.markdown and "google.com" not in blog.markdown and "Google Maps" in body
    assert "[the battery guide](https://b.example/x)" in body
    # [7] names no source; [1] on the office chairs is not what source 1 says.
    assert checks.removed_citations == [1, 7]
    assert "Office chairs matter for remote teams." in body and "[7]" not in body
    assert "pay for themselves** [1]" in body and "helps [2]" in body
    # The copied passage is a quote with its citation.
    [copy] = checks.copied_passages
    assert (copy.source, copy.words) == (3, len(COPIED.rstrip(".").split()))
    assert f"“{COPIED.rstrip('.')}” [3]" in body
    assert [c.number for c in blog.citations] == [1, 2, 3]
    # The language asked for.
    assert (checks.language, checks.detected_language, checks.language_matches) == ("en", "en", True)
    assert not checks.rewritten_for_language
    assert "3 HTML tags converted; 2 links not from research removed" in ctx.progress_messages[-1]


async def test_a_post_in_the_wrong_language_is_written_once_more(table, scripted_llm):
    scripted_llm.when("outline of", "# Sunny roofs\n## Why it pays [1]\n## Storage [2]\n")
    scripted_llm.when("none in another language", ENGLISH)
    scripted_llm.reply(GERMAN)
    events = job()
    research = research_of(events)
    ctx = FakeStageContext.handling(research, Stage.blog)

    await table[type(research)](research, ctx)

    [blog] = ctx.data(BlogCompletedEvent)
    assert blog.checks.rewritten_for_language and blog.checks.language_matches is True
    assert "Solarmodule" not in blog.markdown and "pay for themselves" in blog.markdown
    assert "The post came out in 'de', not 'en': writing it again" in ctx.progress_messages
    assert ctx.usage_calls[-2:] == ["blog:1:retry:section1", "blog:1:retry:section2"]
    # The live text started over with the rewrite.
    assert [offset for offset, _ in ctx.deltas].count(0) == 2


async def test_a_post_still_in_the_wrong_language_is_published_marked(table, scripted_llm):
    scripted_llm.when("outline of", "# Sunny roofs\n## Why it pays [1]\n## Storage [2]\n")
    scripted_llm.reply(GERMAN)
    events = job()
    research = research_of(events)
    ctx = FakeStageContext.handling(research, Stage.blog)

    await table[type(research)](research, ctx)

    [blog] = ctx.data(BlogCompletedEvent)
    assert blog.checks.rewritten_for_language
    assert (blog.checks.detected_language, blog.checks.language_matches) == ("de", False)
    assert "written in 'de', not 'en'" in ctx.progress_messages[-1]


async def test_the_owners_voice_shapes_every_prompt_of_its_jobs_and_no_one_elses(table, scripted_llm):
    scripted_llm.when("outline of", OUTLINE)
    scripted_llm.reply(SECTION)
    voice = VoiceProfile(
        description="Warm, plain-spoken, first person plural.",
        use_words=["neighbours"],
        avoid_words=["synergy"],
        examples=["We put panels on the bakery roof last spring."],
        edits=["We changed our minds about batteries: here is why."],
    )
    theirs, other = job(), job()
    for events, requested in ((theirs, JobRequested(request=theirs.request, owner="acme", voice=voice)),
                              (other, JobRequested(request=other.request, owner="someone-else"))):  # fmt: skip
        research = research_of(events)
        ctx = FakeStageContext.handling(
            research, Stage.blog, history=[events.envelope(JobRequestedEvent, requested)]
        )
        await table[type(research)](research, ctx)

    prompts = [r.prompt for r in scripted_llm.requests]
    acme, others = prompts[:3], prompts[3:]
    for prompt in acme:  # the outline and each section
        assert (
            "Warm, plain-spoken" in prompt
            and "neighbours" in prompt
            and "Never use these words: synergy" in prompt
        )
        assert (
            "bakery roof" in prompt and "changed our minds about batteries" in prompt
        )  # an edit as an example
    assert others and not any("Warm, plain-spoken" in p or "bakery roof" in p for p in others)
