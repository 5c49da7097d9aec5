"""Real nats-server and PostgreSQL from the shared devstack fixtures; persistence runs in-process."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from pressroom_contracts import subjects
from pressroom_contracts.events import Envelope, encode_event
from pressroom_contracts.jobs import JobRequest
from pressroom_devstack.provisioning import reset_nats
from pressroom_devstack.testing.events import JobEvents
from pressroom_persistence.app import create_app
from pressroom_persistence.settings import PersistenceSettings
from pressroom_runtime.history import recorded

PLUGIN = "pressroom_devstack.testing.fixtures"


def pytest_configure(config: pytest.Config) -> None:
    # The root conftest may load the shared fixtures for the whole suite; load them when run alone.
    if not config.pluginmanager.has_plugin(PLUGIN):
        config.pluginmanager.import_plugin(PLUGIN)


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


class Bus:
    """The test's own NATS connection: stores events, counts them, asks queries."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc

    async def publish(self, event: Envelope, *, dedup: bool = True) -> int:
        """dedup=False stores every copy, so the consumer gets the event twice (as after a redelivery)."""
        headers = {"Nats-Msg-Id": event.dedup_key()} if dedup else None
        ack = await self.nc.jetstream().publish(
            subjects.content(event.job_id, event.type),
            encode_event(event),
            headers=headers,
            stream=subjects.STREAM,
        )
        return ack.seq

    async def publish_raw(self, subject: str, data: bytes) -> None:
        await self.nc.jetstream().publish(subject, data, stream=subjects.STREAM)

    async def stored_count(self, job_id: str, event_type: str) -> int:
        subject = subjects.content(job_id, event_type)
        info = await self.nc.jetstream().stream_info(subjects.STREAM, subjects_filter=subject)
        return (info.state.subjects or {}).get(subject, 0)

    async def stored(self, job_id: str, event_type: str) -> list[Envelope]:
        return await recorded(self.nc, job_id, event_type)

    async def ask(self, subject: str, body: Any) -> dict[str, Any]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        reply = await self.nc.request(subject, data, timeout=5)
        return json.loads(reply.data)


@pytest.fixture
def bus(nc: Client) -> Bus:
    return Bus(nc)


async def _eventually(check: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    """Polls until `check` returns something truthy; its last value otherwise fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            assert value, f"condition not met within {timeout}s: {value!r}"
            return value
        await asyncio.sleep(0.1)


@pytest.fixture
def eventually() -> Callable[..., Awaitable[Any]]:
    return _eventually
