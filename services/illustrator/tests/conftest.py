"""Real nats-server and SeaweedFS S3 from the shared devstack fixtures, the scripted OpenAI-compatible
server for the text (and images) API; the illustrator runs in-process in the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from pressroom_contracts import subjects
from pressroom_contracts.events import Envelope, encode_event
from pressroom_contracts.jobs import JobRequest
from pressroom_devstack.objectstore import S3Info
from pressroom_devstack.provisioning import reset_nats
from pressroom_devstack.testing import ScriptedLLM
from pressroom_devstack.testing.events import JobEvents
from pressroom_illustrator.adapters import ImageProvider
from pressroom_illustrator.app import create_app
from pressroom_illustrator.settings import IllustratorSettings
from pressroom_runtime.history import recorded
from pressroom_runtime.llm import TextModel
from pressroom_runtime.objectstore import ObjectStore
from pressroom_runtime.settings import LLMSettings, S3Settings

PLUGIN = "pressroom_devstack.testing.fixtures"


def pytest_configure(config: pytest.Config) -> None:
    # The root conftest may load the shared fixtures for the whole suite; load them when run alone.
    if not config.pluginmanager.has_plugin(PLUGIN):
        config.pluginmanager.import_plugin(PLUGIN)


@pytest.fixture
def provisioned(nats_url: str) -> str:
    """An empty CONTENT stream and fresh durables for each test."""
    reset_nats(nats_url)
    return nats_url


@pytest.fixture
async def nc(provisioned: str) -> AsyncIterator[Client]:
    client = await nats.connect(provisioned)
    yield client
    await client.drain()


def s3_settings(s3: S3Info, bucket: str, secret_key: str | None = None) -> S3Settings:
    return S3Settings(
        endpoint=s3.endpoint, access_key=s3.access_key, secret_key=secret_key or s3.secret_key, bucket=bucket
    )


def s3_store(s3: S3Info, bucket: str, secret_key: str | None = None) -> ObjectStore:
    return ObjectStore(s3_settings(s3, bucket, secret_key))


@pytest.fixture
def bucket(s3: S3Info) -> str:
    """A bucket of the test's own, so sweeps never see another test's objects."""
    name = f"t-{uuid.uuid4().hex[:16]}"
    s3.client().make_bucket(name)
    return name


@pytest.fixture
def store(s3: S3Info, bucket: str) -> ObjectStore:
    return s3_store(s3, bucket)


@pytest.fixture
def text_model(scripted_llm: ScriptedLLM) -> TextModel:
    scripted_llm.when("illustration", "A lighthouse made of circuit boards glowing at dusk.")
    return TextModel(
        LLMSettings(base_url=scripted_llm.base_url, api_key="test", model=scripted_llm.model, profile="chat")
    )


@pytest.fixture
def illustrator(
    provisioned: str, text_model: TextModel, store: ObjectStore
) -> Callable[..., contextlib.AbstractAsyncContextManager[Any]]:
    """`async with illustrator(store=…, images=…, **settings):` runs the service while the block runs."""

    @contextlib.asynccontextmanager
    async def run(
        store: ObjectStore = store, images: ImageProvider | None = None, **overrides: Any
    ) -> AsyncIterator[Any]:
        options: dict[str, Any] = {
            "nats_url": provisioned,
            "replica": "test-illustrator",
            "image_provider": "cover",
            "orphan_sweep_interval_seconds": 0,
            **overrides,
        }
        app = create_app(IllustratorSettings(**options), model=text_model, store=store, images=images)
        await app.start()
        try:
            yield app
        finally:
            await app.stop()

    return run


class Bus:
    """The test's own NATS connection: stores events and reads them back."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc

    async def publish(self, event: Envelope, *, dedup: bool = True) -> int:
        """dedup=False stores every copy, so the consumer gets the event twice (as after a redelivery)."""
        headers = {"Nats-Msg-Id": event.dedup_key()} if dedup else None
        ack = await self.nc.jetstream().publish(
            subjects.content(event.job_id, event.type), encode_event(event), headers=headers,
            stream=subjects.STREAM,
        )  # fmt: skip
        return ack.seq

    async def stored(self, job_id: str, event_type: str) -> list[Any]:
        return await recorded(self.nc, job_id, event_type)

    async def wait_for(
        self, job_id: str, event_type: str, count: int = 1, timeout: float = 20.0
    ) -> list[Any]:
        return await eventually(lambda: self._at_least(job_id, event_type, count), timeout=timeout)

    async def _at_least(self, job_id: str, event_type: str, count: int) -> list[Any]:
        events = await self.stored(job_id, event_type)
        return events if len(events) >= count else []

    async def settled(self, seq: int, timeout: float = 20.0) -> None:
        """Waits until the illustrator acknowledged (or terminated) everything up to stream sequence `seq`."""

        async def done() -> bool:
            info = await self.nc.jetstream().consumer_info(subjects.STREAM, "illustrator")
            return info.ack_floor.stream_seq >= seq and not info.num_ack_pending

        await eventually(done, timeout=timeout)


@pytest.fixture
def bus(nc: Client) -> Bus:
    return Bus(nc)


@pytest.fixture
def job() -> JobEvents:
    return JobEvents.new(JobRequest(topic="Lighthouses and the history of signal technology"))


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    """Polls until `check` returns something truthy; its last value otherwise fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            assert value, f"condition not met within {timeout}s: {value!r}"
            return value
        await asyncio.sleep(0.1)
