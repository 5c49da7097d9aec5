"""The research stage on a real nats-server, run in-process: job.requested in, its events out."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import Client

from pressroom_contracts import subjects
from pressroom_contracts.events import Envelope, encode_event
from pressroom_contracts.jobs import JobRequest
from pressroom_devstack.provisioning import reset_nats
from pressroom_devstack.testing.events import JobEvents
from pressroom_research.adapters.knowledge_base import KnowledgeBase
from pressroom_research.app import create_app
from pressroom_research.settings import ResearchSettings
from pressroom_research.sources import ResearchProvider
from pressroom_runtime.history import recorded


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


async def publish(nc: Client, event: Envelope) -> None:
    await nc.jetstream().publish(
        subjects.content(event.job_id, event.type),
        encode_event(event),
        headers={"Nats-Msg-Id": event.dedup_key()},
        stream=subjects.STREAM,
    )


async def first(nc: Client, job_id: str, *event_types: str, timeout: float = 20.0) -> Envelope:
    """The first stored event of any of these types for the job, waiting for it to appear."""
    deadline = time.monotonic() + timeout
    while True:
        for event_type in event_types:
            events = await recorded(nc, job_id, event_type)
            if events:
                return events[0]
        assert time.monotonic() < deadline, f"no {' or '.join(event_types)} for {job_id} within {timeout}s"
        await asyncio.sleep(0.1)


async def all_of(nc: Client, job_id: str, event_type: str) -> list[Any]:
    return [e.data for e in await recorded(nc, job_id, event_type)]


async def settled(nc: Client, timeout: float = 20.0) -> None:
    """Waits until the research durable has acknowledged everything it was given."""
    js = nc.jetstream()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = await js.consumer_info(subjects.STREAM, "research")
        if info.num_pending == 0 and info.num_ack_pending == 0 and (info.delivered.stream_seq or 0) > 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the research consumer did not settle")


def job(**options: Any) -> JobEvents:
    options.setdefault("topic", "How heat pumps work in cold climates")
    return JobEvents.new(JobRequest(**options))


async def test_research_on_publishes_sources_usage_and_progress(
    nc, research_app, make_tavily, fake_tavily, tavily_results, tavily_result
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
        await publish(nc, events.requested())
        done = (await first(nc, events.job_id, "research.completed")).data

    assert done.provider == "tavily" and not done.skipped
    assert [(s.title, s.location) for s in done.sources] == [
        ("My notes", "https://mine.example/notes"),  # the user's own, first; its duplicate dropped
        ("Heat pumps in the cold", "https://web.example/cold"),
    ]
    assert "supplied by the user" in done.notes
    usage = await all_of(nc, events.job_id, "usage.recorded")
    assert sorted((u.call, u.model) for u in usage) == [
        ("include:1", "tavily-extract"),
        ("search:1", "tavily-search"),
    ]
    assert next(u for u in usage if u.model == "tavily-search").cost_usd > 0
    progress = [p.message for p in await all_of(nc, events.job_id, "stage.progress")]
    assert progress[0] == "Reading the 1 source you supplied"
    assert "Searching the web" in progress[1]
    assert progress[-1].startswith("Found 2 sources")


async def test_research_off_is_skipped_with_the_reason(nc, research_app, make_tavily, fake_tavily):
    events = job(research=False)
    async with research_app(make_tavily()):
        await publish(nc, events.requested())
        done = (await first(nc, events.job_id, "research.completed")).data

    assert done.skipped and done.provider == "none" and done.sources == []
    assert done.reason == "research was turned off"
    progress = [p.message for p in await all_of(nc, events.job_id, "stage.progress")]
    assert progress == ["Research is off for this job: writing from the topic alone"]
    assert fake_tavily.requests == []  # no provider call at all


async def test_nothing_relevant_is_skipped_with_the_reason(nc, research_app, tmp_path):
    (tmp_path / "bread.md").write_text("# Bread\n\nSourdough bread needs flour, water, salt and a starter.\n")
    events = job(topic="Quantum chromodynamics for beginners")
    async with research_app(KnowledgeBase(tmp_path, min_score=0.5)):
        await publish(nc, events.requested())
        done = (await first(nc, events.job_id, "research.completed")).data

    assert done.skipped and done.provider == "knowledge-base"
    assert done.reason == "knowledge-base found nothing relevant to the topic"
    progress = [p.message for p in await all_of(nc, events.job_id, "stage.progress")]
    assert progress[-1] == "No relevant sources found (knowledge-base): writing from the topic alone"
    assert await all_of(nc, events.job_id, "usage.recorded") == []  # the local search is free


async def test_a_rejected_tavily_key_fails_the_stage_visibly(nc, research_app, make_tavily, fake_tavily):
    fake_tavily.script(
        "/search",
        httpx.Response(401, json={"detail": {"error": "Unauthorized: missing or invalid API key."}}),
    )
    events = job()
    async with research_app(make_tavily("tvly-wrong")):
        await publish(nc, events.requested())
        failed = (await first(nc, events.job_id, "stage.failed", "research.completed")).data

    assert failed.stage == "research"
    assert failed.code == "provider_auth" and failed.retryable is False
    assert failed.message.startswith("Tavily rejected the API key")
    assert failed.attempt == 1
    assert fake_tavily.count("/search") == 1  # neither retried in-process nor redelivered
    assert await all_of(nc, events.job_id, "research.completed") == []


async def test_a_transient_outage_is_retried_in_process(
    nc, research_app, make_tavily, fake_tavily, tavily_results, tavily_result
):
    fake_tavily.script(
        "/search",
        httpx.Response(503, text="busy"),
        tavily_results(tavily_result("Back again", "https://web.example/back", "Recovered.")),
    )
    events = job()
    async with research_app(make_tavily()):
        await publish(nc, events.requested())
        done = (await first(nc, events.job_id, "research.completed")).data

    assert [s.title for s in done.sources] == ["Back again"]
    assert fake_tavily.count("/search") == 2
    assert len(await all_of(nc, events.job_id, "usage.recorded")) == 1  # only the call that succeeded


async def test_user_sources_without_tavily_are_kept_unread(nc, research_app, tmp_path):
    events = job(sources=["https://mine.example/a", "https://mine.example/b"])
    async with research_app(KnowledgeBase(tmp_path, min_score=0.5)):
        await publish(nc, events.requested())
        done = (await first(nc, events.job_id, "research.completed")).data

    assert not done.skipped
    assert [s.location for s in done.sources] == ["https://mine.example/a", "https://mine.example/b"]
    assert all(s.snippet.startswith("Supplied by the user") for s in done.sources)


async def test_pdf_passages_are_found_by_the_knowledge_base(nc, research_app, tmp_path, write_pdf):
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
        await publish(nc, events.requested())
        done = (await first(nc, events.job_id, "research.completed")).data

    assert done.provider == "knowledge-base" and not done.skipped
    assert done.sources[0].title == "Heat pump guide (page 2)"
    assert done.sources[0].location == f"{Path(tmp_path) / 'heat.pdf'}#page=2"
    assert "Insulation" in done.sources[0].snippet


async def test_no_provider_call_after_the_job_was_cancelled(nc, research_app, make_tavily, fake_tavily):
    events = job()
    await publish(nc, events.job_cancelled())
    async with research_app(make_tavily()):
        await publish(nc, events.requested())
        await settled(nc)

    assert fake_tavily.requests == []
    assert await all_of(nc, events.job_id, "research.completed") == []


async def test_a_redelivered_request_does_not_pay_again(
    nc, research_app, make_tavily, fake_tavily, tavily_results, tavily_result
):
    fake_tavily.script(
        "/search", tavily_results(tavily_result("Once", "https://web.example/once", "Only once."))
    )
    events = job()
    requested = events.requested()
    async with research_app(make_tavily()):
        await publish(nc, requested)
        await first(nc, events.job_id, "research.completed")
        await settled(nc)
        # The same input again, as after a crash before the ack (a copy the stream does not de-duplicate).
        await nc.jetstream().publish(
            subjects.content(requested.job_id, requested.type),
            encode_event(requested),
            stream=subjects.STREAM,
        )
        await settled(nc)

    assert fake_tavily.count("/search") == 1
    assert len(await all_of(nc, events.job_id, "research.completed")) == 1
