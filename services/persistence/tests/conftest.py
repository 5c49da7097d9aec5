"""Real nats-server and PostgreSQL from the shared devstack fixtures; persistence runs in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from pressroom_contracts.jobs import JobRequest
from pressroom_devstack.provisioning import reset_nats
from pressroom_persistence.app import create_app
from pressroom_persistence.settings import PersistenceSettings
from pressroom_testkit import JobEvents, TestBus


@pytest.fixture
def new_events() -> Callable[..., JobEvents]:
    """Events of a new job: new_events(topic=…, platforms=…, image=…)."""

    def make(topic: str = "Testing event-driven systems", **options: Any) -> JobEvents:
        options.setdefault("platforms", ["linkedin", "x"])
        return JobEvents.new(JobRequest(topic=topic, **options))

    return make


@pytest.fixture
def events(new_events: Callable[..., JobEvents]) -> JobEvents:
    return new_events()


@pytest.fixture(scope="module")
def provisioned(nats_url: str) -> str:
    """An empty stream per test module: no messages left over from other suites on the session's NATS."""
    reset_nats(nats_url)
    return nats_url


@pytest.fixture(scope="module")
async def nc(provisioned: str) -> AsyncIterator[Client]:
    client = await nats.connect(provisioned)
    yield client
    await client.drain()


@pytest.fixture(scope="module")
async def service(provisioned: str, database_url: str) -> AsyncIterator[Any]:
    """The persistence app, started in the test's event loop against the real servers."""
    settings = PersistenceSettings(
        nats_url=provisioned, database_url=database_url, replica="test-persistence"
    )
    app = create_app(settings)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@pytest.fixture
def bus(nc: Client) -> TestBus:
    return TestBus(nc)
