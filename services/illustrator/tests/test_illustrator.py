"""The illustrator in-process against real nats-server, SeaweedFS S3 and the scripted OpenAI server."""

from __future__ import annotations

import asyncio
import hashlib
import io
from datetime import UTC, datetime, timedelta

import httpx
from PIL import Image

from pressroom_contracts.events import (
    BlogCompleted,
    BlogCompletedEvent,
    BlogEdited,
    BlogEditedEvent,
    ImageCompletedEvent,
    JobCancelled,
    JobCancelledEvent,
    RegenerateRequested,
    RegenerateRequestedEvent,
    Stage,
    TokenUsage,
)
from pressroom_contracts.jobs import JobRequest
from pressroom_devstack.objectstore import S3Info
from pressroom_devstack.provisioning import reset_nats
from pressroom_illustrator.sweep import sweep_orphans
from pressroom_runtime.objectstore import ObjectStore, StoredObject
from pressroom_testkit import ScriptedLLM
from pressroom_testkit.events import JobEvents
from pressroom_testkit.scripted_llm import solid_png

from .conftest import s3_settings, s3_store


def png_size(data: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image.size


def chats(llm: ScriptedLLM) -> list:
    return [r for r in llm.requests if r.kind == "chat"]


async def test_cover_card_stores_both_pngs_then_announces_them(
    bus, job, illustrator, store, s3: S3Info, bucket, scripted_llm
) -> None:
    async with illustrator():
        await bus.publish(job.blog(title="Lighthouses, then and now"))
        [event] = await bus.wait_for(job.job_id, "image.completed")

    assert isinstance(event, ImageCompletedEvent)
    image = event.data
    assert (image.version, image.provider, image.content_type) == (1, "cover-card", "image/png")
    assert image.object_key == f"jobs/{job.job_id}/cover-v1.png"
    assert image.prompt == "A lighthouse made of circuit boards glowing at dusk."
    main = await store.get(image.object_key)
    assert png_size(main) == (image.width, image.height) == (1200, 630)
    assert hashlib.sha256(main).hexdigest() == image.sha256 and len(main) == image.size_bytes

    [square] = image.variants
    assert (square.name, square.object_key) == ("square", f"jobs/{job.job_id}/cover-v1-square.png")
    data = await store.get(square.object_key)
    assert png_size(data) == (square.width, square.height) == (1080, 1080)
    assert hashlib.sha256(data).hexdigest() == square.sha256 and len(data) == square.size_bytes

    client = s3.client()
    web = httpx.AsyncClient()
    for key, digest in ((image.object_key, image.sha256), (square.object_key, square.sha256)):
        stat = client.stat_object(bucket, key)
        assert stat.content_type == "image/png"
        assert stat.metadata is not None and stat.metadata.get("x-amz-meta-sha256") == digest
        # Private bucket: no anonymous reads (clients get presigned URLs from the gateway).
        assert (await web.get(f"{s3.url}/{bucket}/{key}")).status_code == 403
    assert (await web.get(await store.presign(image.object_key))).content == main
    await web.aclose()

    usage = {u.data.call: u.data for u in await bus.stored(job.job_id, "usage.recorded")}
    assert usage["image:v1:a1"].images == 1 and usage["image:v1:a1"].model == "pillow"
    assert usage["image-prompt:v1:a1"].output_tokens > 0
    steps = [p.data.message for p in await bus.stored(job.job_id, "stage.progress")]
    assert steps[:2] == ["Imagining the illustration", "Drawing the cover card"]
    assert len(chats(scripted_llm)) == 1


async def test_openai_images_through_the_sdk(bus, job, illustrator, store, scripted_llm) -> None:
    settings = {
        "image_provider": "openai",
        "images_base_url": scripted_llm.base_url,
        "openai_api_key": "test",
    }
    async with illustrator(**settings):
        await bus.publish(job.blog())
        [event] = await bus.wait_for(job.job_id, "image.completed")

    [request] = [r for r in scripted_llm.requests if r.kind == "image"]
    assert request.path == "/v1/images/generations"
    assert request.body["model"] == "dall-e-3" and request.body["size"] == "1792x1024"
    assert request.body["response_format"] == "b64_json"
    assert request.headers["authorization"] == "Bearer test"
    image = event.data
    assert request.prompt == image.prompt
    assert (image.provider, image.width, image.height) == ("openai", 1792, 1024)
    stored = await store.get(image.object_key)
    assert stored == solid_png(1792, 1024)  # what the API returned, byte for byte
    assert hashlib.sha256(stored).hexdigest() == image.sha256
    [square] = image.variants
    assert png_size(await store.get(square.object_key)) == (1024, 1024)

    [usage] = [u.data for u in await bus.stored(job.job_id, "usage.recorded") if u.data.call == "image:v1:a1"]
    assert (usage.provider, usage.model, usage.images, usage.cost_usd) == ("openai", "dall-e-3", 1, 0.04)


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


async def test_regenerate_draws_a_new_version_from_the_latest_blog(
    bus, job, illustrator, store, scripted_llm
) -> None:
    async with illustrator():
        await bus.publish(job.blog(title="First title"))
        [first] = await bus.wait_for(job.job_id, "image.completed")
        v1 = {k: await store.get(k) for k in (first.data.object_key, first.data.variants[0].object_key)}

        edited = BlogEdited(version=2, title="Edited title", markdown="# Edited title\n\nA keeper of lights.",
                            word_count=7)  # fmt: skip
        await bus.publish(job.envelope(BlogEditedEvent, edited))
        await bus.publish(job.envelope(RegenerateRequestedEvent, RegenerateRequested(stage=Stage.social)))
        request = job.envelope(
            RegenerateRequestedEvent, RegenerateRequested(stage=Stage.image, instructions="In watercolour.")
        )
        await bus.publish(request)
        await bus.settled(await bus.publish(request, dedup=False))  # redelivered: drawn once
        rewritten = BlogCompleted(request=job.request, version=3, regenerated=True, title="Third", markdown="# Third",
                                  word_count=2, usage=TokenUsage(model="m"))  # fmt: skip
        seq = await bus.publish(job.envelope(BlogCompletedEvent, rewritten))  # not drawn again
        await bus.settled(seq)

    first_again, second = await bus.stored(job.job_id, "image.completed")
    assert first_again.id == first.id
    image = second.data
    assert image.version == 2 and second.causation_id == request.id
    assert image.object_key == f"jobs/{job.job_id}/cover-v2.png"
    assert image.variants[0].object_key == f"jobs/{job.job_id}/cover-v2-square.png"
    assert image.prompt.endswith("In watercolour.")
    assert image.sha256 != first.data.sha256
    assert {k: await store.get(k) for k in v1} == v1  # v1 left in place, unchanged
    prompts = [r.prompt for r in chats(scripted_llm)]
    assert len(prompts) == 2 and "A keeper of lights." in prompts[1]


async def test_the_same_blog_twice_draws_once(bus, job, illustrator, scripted_llm) -> None:
    async with illustrator():
        blog = job.blog()
        await bus.publish(blog, dedup=False)
        seq = await bus.publish(blog, dedup=False)  # what a redelivery looks like to the consumer
        await bus.settled(seq)
    assert len(await bus.stored(job.job_id, "image.completed")) == 1
    assert len(chats(scripted_llm)) == 1


async def test_no_image_requested_or_job_stopped_means_no_call(bus, illustrator, scripted_llm) -> None:
    no_image = JobEvents.new(JobRequest(topic="A job without a picture", image=False))
    cancelled = JobEvents.new(JobRequest(topic="A job cancelled before its picture"))
    async with illustrator():
        await bus.publish(no_image.blog())
        await bus.publish(cancelled.envelope(JobCancelledEvent, JobCancelled()))
        seq = await bus.publish(cancelled.blog())
        await bus.settled(seq)
    for events in (no_image, cancelled):
        assert await bus.stored(events.job_id, "image.completed") == []
        assert await bus.stored(events.job_id, "stage.failed") == []
    assert scripted_llm.requests == []


async def test_regenerate_before_any_blog_fails_clearly(bus, job, illustrator) -> None:
    async with illustrator():
        await bus.publish(job.envelope(RegenerateRequestedEvent, RegenerateRequested(stage=Stage.image)))
        [failed] = await bus.wait_for(job.job_id, "stage.failed")
    assert (failed.data.code, failed.data.retryable) == ("not_ready", False)


async def test_the_orphan_sweep_runs_in_the_background_and_stops_with_the_service(
    bus, job, illustrator
) -> None:
    async with illustrator(orphan_sweep_interval_seconds=0.05, orphan_after_seconds=0):
        await asyncio.sleep(0.3)  # a few sweeps of an empty bucket
        await bus.publish(job.blog())
        await bus.wait_for(job.job_id, "image.completed")
    current = {t.get_coro().__qualname__ for t in asyncio.all_tasks()}  # type: ignore[union-attr]
    assert "run_sweeper" not in current
