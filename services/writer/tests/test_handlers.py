"""The writer's handler table on a FakeStageContext, with the scripted model behind the real openai SDK."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from pressroom_contracts.events import (
    BlogCompletedEvent,
    RegenerateRequested,
    RegenerateRequestedEvent,
    Stage,
)
from pressroom_contracts.jobs import JobRequest
from pressroom_devstack.testing import FakeStageContext, JobEvents, ScriptedLLM
from pressroom_runtime.errors import JobStopped, PermanentError
from pressroom_runtime.llm import TextModel
from pressroom_runtime.settings import LLMProfile, LLMSettings
from pressroom_runtime.stage import Handler
from pressroom_writer.handlers import handlers
from pressroom_writer.writer import Writer

OUTLINE = "# Sunny roofs\n## Why panels pay [1]\n## Storing the surplus [2]\n"
SECTION = "Panels on the roof pay for themselves [1]. Storage helps at night [2]. Made up [9]."


@pytest.fixture
def table(scripted_llm: ScriptedLLM) -> dict[type, Handler]:
    model = TextModel(
        LLMSettings(
            base_url=scripted_llm.base_url,
            api_key=SecretStr("t"),
            model=scripted_llm.model,
            profile=LLMProfile.chat,
        )
    )
    return handlers(Writer(model, max_tokens=2048))


def job() -> JobEvents:
    return JobEvents.new(JobRequest(topic="Rooftop solar for homes", length="short"))


def regenerate(events: JobEvents, stage: Stage = Stage.blog) -> RegenerateRequestedEvent:
    event = events.envelope(RegenerateRequestedEvent, RegenerateRequested(stage=stage))
    assert isinstance(event, RegenerateRequestedEvent)
    return event


async def test_research_becomes_an_outline_then_streamed_and_cited_sections(table, scripted_llm):
    scripted_llm.when("outline of", OUTLINE)
    scripted_llm.reply(SECTION)
    events = job()
    research = events.research(sources=2)
    ctx = FakeStageContext.handling(research, Stage.blog, history=[events.requested()])

    await table[type(research)](research, ctx)

    [blog] = ctx.data(BlogCompletedEvent)
    assert (blog.version, blog.regenerated, blog.title) == (1, False, "Sunny roofs")
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
    assert blog.usage.output_tokens == 2 * len(SECTION.split())  # the sections' tokens (word-counted here)
    assert ctx.actions[:2] == ["ensure_active", "progress Planning a short blog post with scripted-model"]
    # Each section's call only after checking the job is still on.
    assert ctx.actions[ctx.actions.index("usage blog:1:section2") - 2] == "ensure_active"
    # Each section is asked with its own sources and what was written before it.
    second = scripted_llm.requests[2].prompt
    assert "“Storing the surplus”" in second and "[2] S1" in second and "[1] S0" not in second
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
    history = [events.research(sources=2), events.blog(version=1), events.blog_edited(version=2)]
    request = regenerate(events)
    ctx = FakeStageContext.handling(request, Stage.blog, history=history)

    await table[type(request)](request, ctx)

    [blog] = ctx.data(BlogCompletedEvent)
    assert (blog.version, blog.regenerated) == (3, True)
    assert ctx.usage_calls[0] == "blog:3:outline"
    assert "[2] S1" in scripted_llm.requests[0].prompt  # the same sources, numbered as before


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
