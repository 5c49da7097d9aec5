"""The research stage's logic and handler table on a FakeStageContext: no broker, real providers (the
knowledge base on a temporary folder, tavily-python over an httpx.MockTransport)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from pressroom_contracts.events import ResearchCompletedEvent, Stage
from pressroom_contracts.jobs import JobRequest
from pressroom_research.adapters.knowledge_base import KnowledgeBase
from pressroom_research.handlers import handlers
from pressroom_research.researcher import Researcher
from pressroom_research.sources import ResearchProvider
from pressroom_runtime.errors import JobStopped
from pressroom_testkit import FakeStageContext, JobEvents


def job(**options: Any) -> JobEvents:
    options.setdefault("topic", "How heat pumps work in cold climates")
    return JobEvents.new(JobRequest(**options))


async def run(
    provider: ResearchProvider, events: JobEvents, max_sources: int = 5, **kw: Any
) -> FakeStageContext:
    """job.requested through the research handler table; the context shows what it did."""
    requested = events.requested()
    ctx = FakeStageContext.handling(requested, Stage.research, **kw)
    table = handlers(Researcher(provider, max_sources))
    await table[type(requested)](requested, ctx)
    return ctx


def completed(ctx: FakeStageContext) -> Any:
    [done] = ctx.data(ResearchCompletedEvent)
    return done


async def test_user_sources_come_first_and_found_duplicates_are_dropped(
    make_tavily, fake_tavily, tavily_results, tavily_result
):
    fake_tavily.script(
        "/extract",
        httpx.Response(
            200,
            json={
                "results": [
                    {"url": "https://mine.example/notes", "title": "My notes", "raw_content": "Mine."}
                ],
                "failed_results": [],
            },
        ),
    )
    fake_tavily.script(
        "/search",
        tavily_results(
            tavily_result(
                "Heat pumps in the cold",
                "https://web.example/cold",
                "Heat pumps still work in cold climates.",
                0.9,
            ),
            tavily_result("My notes again", "https://mine.example/notes", "Duplicate of a user source."),
        ),
    )
    ctx = await run(make_tavily(), job(sources=["https://mine.example/notes"]))

    done = completed(ctx)
    assert done.provider == "tavily" and not done.skipped
    assert [(s.title, s.location) for s in done.sources] == [
        ("My notes", "https://mine.example/notes"),  # the user's own, first; its duplicate dropped
        ("Heat pumps in the cold", "https://web.example/cold"),
    ]
    assert "supplied by the user" in done.notes
    assert ctx.usage_calls == ["include:1", "search:1"]
    [include, search] = [e.data for e in ctx.published if e.type == "usage.recorded"]
    assert (include.model, search.model) == ("tavily-extract", "tavily-search") and search.cost_usd > 0
    assert ctx.progress_messages[0] == "Reading the 1 source you supplied"
    assert "Searching the web" in ctx.progress_messages[1]
    assert ctx.progress_messages[-1].startswith("Found 2 sources")
    # Each paid call only after checking the job is still on.
    assert ctx.actions[ctx.actions.index("usage include:1") - 2] == "ensure_active"
    assert ctx.actions[ctx.actions.index("usage search:1") - 2] == "ensure_active"


async def test_research_off_is_skipped_with_the_reason(make_tavily, fake_tavily):
    ctx = await run(make_tavily(), job(research=False))

    done = completed(ctx)
    assert done.skipped and done.provider == "none" and done.sources == []
    assert done.reason == "research was turned off"
    assert ctx.progress_messages == ["Research is off for this job: writing from the topic alone"]
    assert fake_tavily.requests == []  # no provider call at all


async def test_research_off_still_passes_the_users_urls_on_unread(make_tavily, fake_tavily):
    ctx = await run(make_tavily(), job(research=False, sources=["https://mine.example/a"]))

    done = completed(ctx)
    assert done.skipped and [s.location for s in done.sources] == ["https://mine.example/a"]
    assert done.reason == "research was turned off: only the 1 source you supplied, unread"
    assert fake_tavily.requests == []


async def test_nothing_relevant_is_skipped_with_the_reason(tmp_path: Path):
    (tmp_path / "bread.md").write_text("# Bread\n\nSourdough bread needs flour, water, salt and a starter.\n")
    ctx = await run(KnowledgeBase(tmp_path, min_score=0.5), job(topic="Quantum chromodynamics for beginners"))

    done = completed(ctx)
    assert done.skipped and done.provider == "knowledge-base"
    assert done.reason == "knowledge-base found nothing relevant to the topic"
    assert (
        ctx.progress_messages[-1]
        == "No relevant sources found (knowledge-base): writing from the topic alone"
    )
    assert ctx.usage_calls == []  # the local search is free


async def test_a_transient_outage_is_retried_in_process(
    make_tavily, fake_tavily, tavily_results, tavily_result
):
    fake_tavily.script(
        "/search",
        httpx.Response(503, text="busy"),
        tavily_results(
            tavily_result("Back again", "https://web.example/back", "Heat pumps recovered in the cold.")
        ),
    )
    ctx = await run(make_tavily(), job())

    assert [s.title for s in completed(ctx).sources] == ["Back again"]
    assert fake_tavily.count("/search") == 2
    assert ctx.usage_calls == ["search:1"]  # only the call that succeeded


async def test_user_sources_without_tavily_are_kept_unread(tmp_path: Path):
    ctx = await run(
        KnowledgeBase(tmp_path, min_score=0.5),
        job(sources=["https://mine.example/a", "https://mine.example/b"]),
    )

    done = completed(ctx)
    assert not done.skipped
    assert [s.location for s in done.sources] == ["https://mine.example/a", "https://mine.example/b"]
    assert all(s.snippet.startswith("Supplied by the user") for s in done.sources)


async def test_supplied_sources_that_fill_every_place_mean_no_search(make_tavily, fake_tavily):
    fake_tavily.script("/extract", httpx.Response(200, json={"results": [], "failed_results": []}))
    ctx = await run(make_tavily(), job(sources=["https://mine.example/a"]), max_sources=1)

    assert "no search: the supplied sources fill all 1 places" in completed(ctx).notes
    assert fake_tavily.count("/search") == 0


async def test_pdf_passages_are_found_by_the_knowledge_base(tmp_path: Path, write_pdf):
    write_pdf(
        tmp_path / "heat.pdf",
        [
            "Heat pumps move heat instead of making it, even in cold climates.",
            "Insulation and correct sizing let a small heat pump heat a whole house.",
        ],
        title="Heat pump guide",
    )
    (tmp_path / "bread.md").write_text("# Bread\n\nSourdough bread needs flour, water, salt and a starter.\n")
    ctx = await run(KnowledgeBase(tmp_path, min_score=0.1), job(topic="Heat pump insulation and sizing"))

    done = completed(ctx)
    assert done.provider == "knowledge-base" and not done.skipped
    assert done.sources[0].title == "Heat pump guide (page 2)"
    assert "Insulation" in done.sources[0].snippet


async def test_a_stopped_job_makes_no_provider_call(make_tavily, fake_tavily):
    events = job()
    with pytest.raises(JobStopped):
        await run(make_tavily(), events, history=[events.job_cancelled()])
    assert fake_tavily.requests == []


async def test_an_input_handled_before_is_announced_again_not_researched_again(make_tavily, fake_tavily):
    events = job()
    requested = events.requested()
    earlier = FakeStageContext.handling(requested, Stage.research)
    await earlier.emit(ResearchCompletedEvent, completed_payload(events))
    ctx = FakeStageContext.handling(requested, Stage.research, history=earlier.history, attempt=2)

    await handlers(Researcher(make_tavily(), 5))[type(requested)](requested, ctx)

    assert ctx.actions == ["republish research.completed"]
    assert fake_tavily.requests == []


def completed_payload(events: JobEvents) -> Any:
    return events.research().data
