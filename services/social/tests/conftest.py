"""The social app in-process against a real nats-server and the scripted OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import nats
import pytest

from pressroom_contracts.jobs import JobRequest
from pressroom_contracts.topology import SOCIAL
from pressroom_devstack.provisioning import reset_nats
from pressroom_social.app import create_app
from pressroom_social.settings import SocialSettings
from pressroom_testkit import JobEvents, TestBus


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[TestBus]:
    client = await nats.connect(nats_url)
    try:
        yield TestBus(client, durable=SOCIAL.durable)
    finally:
        await client.drain()


@pytest.fixture
async def social(nats_url: str, scripted_llm: Any) -> AsyncIterator[Any]:
    """The social app started in the test's event loop, on a stream emptied for this test."""
    reset_nats(nats_url)
    app = create_app(
        SocialSettings(nats_url=nats_url, replica="social-test"), model=scripted_llm.text_model()
    )
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
