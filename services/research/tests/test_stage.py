"""The research service on a real nats-server, run in-process: what delivery adds to the logic (a
permanent failure announced, a cancel read from the stream, a redelivery that does not pay again).
The logic itself is tested on a fake context in test_researcher.py."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import Client

from pressroom_contracts.jobs import JobRequest
from pressroom_contracts.topology import RESEARCH
from pressroom_devstack.provisioning import reset_nats
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
