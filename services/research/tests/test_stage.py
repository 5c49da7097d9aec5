"""The research stage on a real nats-server, run in-process: job.requested in, its events out."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import Client

from pressroom_contracts.jobs import JobRequest
from pressroom_contracts.topology import RESEARCH
from pressroom_devstack.provisioning import reset_nats
from pressroom_research.adapters.knowledge_base import KnowledgeBase
from pressroom_research.app import create_app
from pressroom_research.settings import ResearchSettings
from pressroom_research.sources import ResearchProvider
from pressroom_testkit import JobEvents, TestBus


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    """A clean stream and freshly provisioned durables for each test, and the test's own connection."""
    reset_nats(nats_url)
    client = await nats.connect(nats_url)
    yield client
    await client.drain()


@pytest.fixture
def research_app(nats_url: str, nc: Client) -> Callable[..., contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def run(provider: ResearchProvider, **settings: Any) -> AsyncIterator[None]:
        app = create_app(
            ResearchSettings(nats_url=nats_url, replica="test-research", **settings), provider=provider
        )
        await app.start()
        try:
            yield
        finally:
            await app.stop()

    return run


@pytest.fixture
def bus(nc: Client) -> TestBus:
    return TestBus(nc, durable=RESEARCH.durable)


async def all_of(bus: TestBus, job_id: str, event_type: str) -> list[Any]:
    return [e.data for e in await bus.stored(job_id, event_type)]


def job(**options: Any) -> JobEvents:
    options.setdefault("topic", "How heat pumps work in cold climates")
    return JobEvents.new(JobRequest(**options))


async def test_research_on_publishes_sources_usage_and_progress(
    bus, research_app, make_tavily, fake_tavily, tavily_results, tavily_result
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
            tavily_result("Heat pumps in the cold", "https://web.example/cold", "They still work.", 0.9),
            tavily_result("My notes again", "https://mine.example/notes", "Duplicate of a user source."),
        ),
    )
    events = job(sources=["https://mine.example/notes"])
    async with research_app(make_tavily()):
        await bus.publish(events.requested())
        done = (await bus.first(events.job_id, "research.completed")).data

    assert done.provider == "tavily" and not done.skipped
    assert [(s.title, s.location) for s in done.sources] == [
        ("My notes", "https://mine.example/notes"),  # the user's own, first; its duplicate dropped
        ("Heat pumps in the cold", "https://web.example/cold"),
    ]
    assert "supplied by the user" in done.notes
    usage = await all_of(bus, events.job_id, "usage.recorded")
    assert sorted((u.call, u.model) for u in usage) == [
        ("include:1", "tavily-extract"),
        ("search:1", "tavily-search"),
    ]
    assert next(u for u in usage if u.model == "tavily-search").cost_usd > 0
    progress = [p.message for p in await all_of(bus, events.job_id, "stage.progress")]
    assert progress[0] == "Reading the 1 source you supplied"
    assert "Searching the web" in progress[1]
    assert progress[-1].startswith("Found 2 sources")


async def test_research_off_is_skipped_with_the_reason(bus, research_app, make_tavily, fake_tavily):
    events = job(research=False)
    async with research_app(make_tavily()):
        await bus.publish(events.requested())
        done = (await bus.first(events.job_id, "research.completed")).data

    assert done.skipped and done.provider == "none" and done.sources == []
    assert done.reason == "research was turned off"
    progress = [p.message for p in await all_of(bus, events.job_id, "stage.progress")]
    assert progress == ["Research is off for this job: writing from the topic alone"]
    assert fake_tavily.requests == []  # no provider call at all


async def test_nothing_relevant_is_skipped_with_the_reason(bus, research_app, tmp_path):
    (tmp_path / "bread.md").write_text("# Bread\n\nSourdough bread needs flour, water, salt and a starter.\n")
    events = job(topic="Quantum chromodynamics for beginners")
    async with research_app(KnowledgeBase(tmp_path, min_score=0.5)):
        await bus.publish(events.requested())
        done = (await bus.first(events.job_id, "research.completed")).data

    assert done.skipped and done.provider == "knowledge-base"
    assert done.reason == "knowledge-base found nothing relevant to the topic"
    progress = [p.message for p in await all_of(bus, events.job_id, "stage.progress")]
    assert progress[-1] == "No relevant sources found (knowledge-base): writing from the topic alone"
    assert await all_of(bus, events.job_id, "usage.recorded") == []  # the local search is free


async def test_a_rejected_tavily_key_fails_the_stage_visibly(bus, research_app, make_tavily, fake_tavily):
    fake_tavily.script(
        "/search",
        httpx.Response(401, json={"detail": {"error": "Unauthorized: missing or invalid API key."}}),
    )
    events = job()
    async with research_app(make_tavily("tvly-wrong")):
        await bus.publish(events.requested())
        failed = (await bus.first(events.job_id, "stage.failed", "research.completed")).data

    assert failed.stage == "research"
    assert failed.code == "provider_auth" and failed.retryable is False
    assert failed.message.startswith("Tavily rejected the API key")
    assert failed.attempt == 1
    assert fake_tavily.count("/search") == 1  # neither retried in-process nor redelivered
    assert await all_of(bus, events.job_id, "research.completed") == []


async def test_a_transient_outage_is_retried_in_process(
    bus, research_app, make_tavily, fake_tavily, tavily_results, tavily_result
):
    fake_tavily.script(
        "/search",
        httpx.Response(503, text="busy"),
        tavily_results(tavily_result("Back again", "https://web.example/back", "Recovered.")),
    )
    events = job()
    async with research_app(make_tavily()):
        await bus.publish(events.requested())
        done = (await bus.first(events.job_id, "research.completed")).data

    assert [s.title for s in done.sources] == ["Back again"]
    assert fake_tavily.count("/search") == 2
    assert len(await all_of(bus, events.job_id, "usage.recorded")) == 1  # only the call that succeeded


async def test_user_sources_without_tavily_are_kept_unread(bus, research_app, tmp_path):
    events = job(sources=["https://mine.example/a", "https://mine.example/b"])
    async with research_app(KnowledgeBase(tmp_path, min_score=0.5)):
        await bus.publish(events.requested())
        done = (await bus.first(events.job_id, "research.completed")).data

    assert not done.skipped
    assert [s.location for s in done.sources] == ["https://mine.example/a", "https://mine.example/b"]
    assert all(s.snippet.startswith("Supplied by the user") for s in done.sources)


async def test_pdf_passages_are_found_by_the_knowledge_base(bus, research_app, tmp_path, write_pdf):
    write_pdf(
        tmp_path / "heat.pdf",
        [
            "Heat pumps move heat instead of making it, even in cold climates.",
            "Insulation and correct sizing let a small heat pump heat a whole house.",
        ],
        title="Heat pump guide",
    )
    (tmp_path / "bread.md").write_text("# Bread\n\nSourdough bread needs flour, water, salt and a starter.\n")
    events = job(topic="Heat pump insulation and sizing")
    async with research_app(KnowledgeBase(tmp_path, min_score=0.1)):
        await bus.publish(events.requested())
        done = (await bus.first(events.job_id, "research.completed")).data

    assert done.provider == "knowledge-base" and not done.skipped
    assert done.sources[0].title == "Heat pump guide (page 2)"
    assert done.sources[0].location == f"{Path(tmp_path) / 'heat.pdf'}#page=2"
    assert "Insulation" in done.sources[0].snippet


async def test_no_provider_call_after_the_job_was_cancelled(bus, research_app, make_tavily, fake_tavily):
    events = job()
    await bus.publish(events.job_cancelled())
    async with research_app(make_tavily()):
        await bus.publish(events.requested())
        await bus.settled()

    assert fake_tavily.requests == []
    assert await all_of(bus, events.job_id, "research.completed") == []


async def test_a_redelivered_request_does_not_pay_again(
    bus, research_app, make_tavily, fake_tavily, tavily_results, tavily_result
):
    fake_tavily.script(
        "/search", tavily_results(tavily_result("Once", "https://web.example/once", "Only once."))
    )
    events = job()
    requested = events.requested()
    async with research_app(make_tavily()):
        await bus.publish(requested)
        await bus.first(events.job_id, "research.completed")
        await bus.settled()
        # The same input again, as after a crash before the ack (a copy the stream does not de-duplicate).
        await bus.publish(requested, dedup=False)
        await bus.settled()

    assert fake_tavily.count("/search") == 1
    assert len(await all_of(bus, events.job_id, "research.completed")) == 1
