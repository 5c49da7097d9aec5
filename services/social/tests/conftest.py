"""The social app in-process against a real nats-server and the scripted OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from pydantic import SecretStr

from pressroom_contracts import subjects
from pressroom_contracts.events import Envelope, encode_event
from pressroom_contracts.jobs import JobRequest
from pressroom_contracts.topology import SOCIAL
from pressroom_devstack.provisioning import reset_nats
from pressroom_devstack.testing.events import JobEvents
from pressroom_runtime.history import recorded
from pressroom_runtime.llm import TextModel
from pressroom_runtime.settings import LLMProfile, LLMSettings
from pressroom_social.app import create_app
from pressroom_social.settings import SocialSettings

PLUGIN = "pressroom_devstack.testing.fixtures"


def pytest_configure(config: pytest.Config) -> None:
    # The root conftest loads the shared fixtures for the whole suite; load them when run alone.
    if not config.pluginmanager.has_plugin(PLUGIN):
        config.pluginmanager.import_plugin(PLUGIN)


class Bus:
    """The test's own NATS connection: publishes inputs, reads what the stage stored."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc

    async def publish(self, event: Envelope, *, dedup: bool = True) -> None:
        """dedup=False stores every copy, so the stage gets the event twice (as after a redelivery)."""
        headers = {"Nats-Msg-Id": event.dedup_key()} if dedup else None
        await self.nc.jetstream().publish(
            subjects.content(event.job_id, event.type),
            encode_event(event),
            headers=headers,
            stream=subjects.STREAM,
        )

    async def stored(self, job_id: str, event_type: str) -> list[Any]:
        return await recorded(self.nc, job_id, event_type)

    async def wait_for(
        self, job_id: str, event_type: str, count: int = 1, timeout: float = 20.0
    ) -> list[Any]:
        deadline = time.monotonic() + timeout
        while True:
            events = await self.stored(job_id, event_type)
            if len(events) >= count:
                return events
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(events)} {event_type} within {timeout}s, expected {count}")
            await asyncio.sleep(0.1)

    async def settled(self, timeout: float = 20.0) -> None:
        """Every message the social consumer has was handled and acknowledged."""
        js = self.nc.jetstream()
        deadline = time.monotonic() + timeout
        while True:
            info = await js.consumer_info(subjects.STREAM, SOCIAL.durable)
            if not info.num_pending and not info.num_ack_pending:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"social consumer not settled: {info}")
            await asyncio.sleep(0.1)


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    client = await nats.connect(nats_url)
    try:
        yield Bus(client)
    finally:
        await client.drain()


@pytest.fixture
async def social(nats_url: str, scripted_llm: Any) -> AsyncIterator[Any]:
    """The social app started in the test's event loop, on a stream emptied for this test."""
    reset_nats(nats_url)
    model = TextModel(
        LLMSettings(
            base_url=scripted_llm.base_url,
            api_key=SecretStr("t"),
            model=scripted_llm.model,
            profile=LLMProfile.chat,
        )
    )
    app = create_app(SocialSettings(nats_url=nats_url, replica="social-test"), model=model)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@pytest.fixture
def new_job() -> Callable[..., JobEvents]:
    """Events of a new job: new_job(platforms=[…], x_thread=…)."""

    def make(topic: str = "Rooftop solar panels for homes", **options: Any) -> JobEvents:
        return JobEvents.new(JobRequest(topic=topic, **options))

    return make
