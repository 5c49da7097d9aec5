"""The illustrator service in-process against real nats-server, SeaweedFS S3 and the scripted OpenAI
server: what delivery adds (a refused upload announced as stage.failed, a redelivery drawn once, the
orphan sweep reading the stream, the background sweeper). The logic is in test_handlers.py, on a fake
context."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta

from PIL import Image
from prometheus_client import REGISTRY

from pressroom_contracts.events import (
    Stage,
)
from pressroom_contracts.jobs import JobRequest
from pressroom_devstack.objectstore import S3Info
from pressroom_devstack.provisioning import reset_nats
from pressroom_illustrator.sweep import sweep_orphans
from pressroom_runtime.objectstore import ObjectStore, StoredObject
from pressroom_testkit import ScriptedLLM, eventually
from pressroom_testkit.events import JobEvents

from .conftest import s3_settings, s3_store


def png_size(data: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image.size


def chats(llm: ScriptedLLM) -> list:
    return [r for r in llm.requests if r.kind == "chat"]


class HalfBrokenStore(ObjectStore):
    """Stores main pictures, but the variants go to a store that refuses our credentials."""

    def __init__(self, s3: S3Info, bucket: str, bad: ObjectStore) -> None:
        super().__init__(s3_settings(s3, bucket))
        self.bad = bad

    async def put(self, key: str, data: bytes, content_type: str) -> StoredObject:
        if key.endswith("-square.png"):
            return await self.bad.put(key, data, content_type)
        return await super().put(key, data, content_type)


async def test_failed_upload_announces_no_image_and_the_sweep_removes_the_rest(
    bus, job, illustrator, store, s3: S3Info, bucket, nc
) -> None:
    wrong = s3_store(s3, bucket, secret_key="not-the-secret")
    other = JobEvents.new(JobRequest(topic="Another job entirely"))
    async with illustrator(store=wrong):
        await bus.publish(job.blog())
        [failed] = await bus.wait_for(job.job_id, "stage.failed")
    async with illustrator(store=HalfBrokenStore(s3, bucket, wrong)):
        await bus.publish(other.blog())
        [half] = await bus.wait_for(other.job_id, "stage.failed")

    for event in (failed, half):
        assert (event.data.stage, event.data.code, event.data.retryable) == (
            Stage.image,
            "storage_refused",
            False,
        )
        assert "SignatureDoesNotMatch" in event.data.message or "AccessDenied" in event.data.message
    assert await bus.stored(job.job_id, "image.completed") == []
    assert await bus.stored(other.job_id, "image.completed") == []

    # The main picture of the second job was stored before its variant failed: nothing refers to it.
    left = [o.key for o in await store.list_objects("jobs/")]
    assert left == [f"jobs/{other.job_id}/cover-v1.png"]
    later = datetime.now(UTC) + timedelta(hours=2)
    report = await sweep_orphans(store, nc, older_than=timedelta(hours=1), now=later, margin=timedelta(0))
    assert report.deleted == left
    assert await store.list_objects("jobs/") == []


async def test_sweep_deletes_old_unreferenced_objects_only(
    bus, job, illustrator, store, nc, provisioned
) -> None:
    before = JobEvents.new(JobRequest(topic="Uploaded before the stream's history"))
    await store.put(f"jobs/{before.job_id}/cover-v1.png", b"x", "image/png")
    await asyncio.sleep(1.1)  # S3 times have one-second resolution
    reset_nats(provisioned)  # the stream starts after that object: it cannot vouch for it
    await asyncio.sleep(1.1)

    async with illustrator():
        await bus.publish(job.blog())
        [event] = await bus.wait_for(job.job_id, "image.completed")
    referenced = {event.data.object_key, *(v.object_key for v in event.data.variants)}
    orphan = f"jobs/{job.job_id}/cover-v7.png"
    stranger = JobEvents.new(JobRequest(topic="A job whose event never came"))
    lonely = f"jobs/{stranger.job_id}/cover-v1.png"
    for key in (orphan, lonely, "elsewhere/not-ours.png"):
        await store.put(key, b"png", "image/png")

    young = await sweep_orphans(store, nc, older_than=timedelta(hours=1))
    assert young.deleted == [] and young.kept == 0

    later = datetime.now(UTC) + timedelta(hours=2)
    report = await sweep_orphans(store, nc, older_than=timedelta(hours=1), now=later, margin=timedelta(0))
    assert sorted(report.deleted) == sorted([orphan, lonely])
    assert report.kept == 2
    remaining = {o.key for o in await store.list_objects("")}
    assert remaining == {*referenced, f"jobs/{before.job_id}/cover-v1.png", "elsewhere/not-ours.png"}


async def test_the_same_blog_twice_draws_once(bus, job, illustrator, scripted_llm) -> None:
    async with illustrator():
        blog = job.blog()
        await bus.publish(blog, dedup=False)
        seq = await bus.publish(blog, dedup=False)  # what a redelivery looks like to the consumer
        await bus.settled(seq)
    assert len(await bus.stored(job.job_id, "image.completed")) == 1
    assert len(chats(scripted_llm)) == 1


async def test_the_orphan_sweep_runs_in_the_background_and_stops_with_the_service(
    bus, job, illustrator
) -> None:
    before = sweeps("ok")
    async with illustrator(orphan_sweep_interval_seconds=0.05, orphan_after_seconds=0):
        await eventually(lambda: sweeps("ok") >= before + 2)  # it runs, again and again
        await bus.publish(job.blog())
        await bus.wait_for(job.job_id, "image.completed")
    current = {t.get_coro().__qualname__ for t in asyncio.all_tasks()}  # type: ignore[union-attr]
    assert "run_sweeper" not in current


def sweeps(outcome: str) -> float:
    return REGISTRY.get_sample_value("pressroom_orphan_sweeps_total", {"outcome": outcome}) or 0.0
