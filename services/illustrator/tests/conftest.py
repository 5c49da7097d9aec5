"""Real nats-server and SeaweedFS S3 from the shared devstack fixtures, the scripted OpenAI-compatible
server for the text (and images) API; the illustrator runs in-process in the test's event loop."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from pressroom_contracts.jobs import JobRequest
from pressroom_contracts.topology import ILLUSTRATOR
from pressroom_devstack.objectstore import S3Info
from pressroom_devstack.provisioning import reset_nats
from pressroom_illustrator.adapters import ImageProvider
from pressroom_illustrator.app import create_app
from pressroom_illustrator.settings import IllustratorSettings
from pressroom_runtime.llm import TextModel
from pressroom_runtime.objectstore import ObjectStore
from pressroom_runtime.settings import S3Settings
from pressroom_testkit import JobEvents, ScriptedLLM, TestBus


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
    return scripted_llm.text_model()


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


@pytest.fixture
def bus(nc: Client) -> TestBus:
    return TestBus(nc, durable=ILLUSTRATOR.durable)


@pytest.fixture
def job() -> JobEvents:
    return JobEvents.new(JobRequest(topic="Lighthouses and the history of signal technology"))
