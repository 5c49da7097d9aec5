"""The illustrator's handler table on a FakeStageContext: real SeaweedFS S3 for the pictures, the scripted
OpenAI-compatible server for the text and images APIs, no broker."""

from __future__ import annotations

import hashlib
import io

import httpx
import pytest
from PIL import Image

from pressroom_contracts.events import (
    BlogCompleted,
    BlogCompletedEvent,
    Envelope,
    ImageCompletedEvent,
    RegenerateRequested,
    RegenerateRequestedEvent,
    Stage,
    TokenUsage,
)
from pressroom_contracts.jobs import JobRequest
from pressroom_devstack.objectstore import S3Info
from pressroom_illustrator.adapters import CoverCardProvider, ImageProvider
from pressroom_illustrator.app import image_provider
from pressroom_illustrator.handlers import handlers
from pressroom_illustrator.illustrator import Illustrator
from pressroom_illustrator.settings import IllustratorSettings
from pressroom_runtime.errors import JobStopped, PermanentError
from pressroom_runtime.llm import TextModel
from pressroom_runtime.objectstore import ObjectStore
from pressroom_runtime.stage import Handler
from pressroom_testkit import FakeStageContext, JobEvents, ScriptedLLM
from pressroom_testkit.scripted_llm import solid_png


def png_size(data: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image.size


def chats(llm: ScriptedLLM) -> list:
    return [r for r in llm.requests if r.kind == "chat"]


def table_for(
    text_model: TextModel, store: ObjectStore, images: ImageProvider | None = None
) -> dict[type, Handler]:
    return handlers(Illustrator(text_model, store, images or CoverCardProvider(), prompt_max_tokens=120))


@pytest.fixture
def table(text_model: TextModel, store: ObjectStore) -> dict[type, Handler]:
    return table_for(text_model, store)


async def handle(
    table: dict[type, Handler], event: Envelope, history: list[Envelope] | None = None
) -> FakeStageContext:
    ctx = FakeStageContext.handling(event, Stage.image, history=history or [])
    await table[type(event)](event, ctx)
    return ctx


def regenerate(job: JobEvents, stage: Stage = Stage.image, instructions: str | None = None) -> Envelope:
    return job.envelope(RegenerateRequestedEvent, RegenerateRequested(stage=stage, instructions=instructions))


async def test_cover_card_stores_both_pngs_then_announces_them(
    table, job, store, s3: S3Info, bucket, scripted_llm
):
    ctx = await handle(table, job.blog(title="Lighthouses, then and now"))

    [image] = ctx.data(ImageCompletedEvent)
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
    async with httpx.AsyncClient() as web:
        for key, digest in ((image.object_key, image.sha256), (square.object_key, square.sha256)):
            stat = client.stat_object(bucket, key)
            assert stat.content_type == "image/png"
            assert stat.metadata is not None and stat.metadata.get("x-amz-meta-sha256") == digest
            # Private bucket: no anonymous reads (clients get presigned URLs from the gateway).
            assert (await web.get(f"{s3.url}/{bucket}/{key}")).status_code == 403
        assert (await web.get(await store.presign(image.object_key))).content == main

    usage = {e.data.call: e.data for e in ctx.published if e.type == "usage.recorded"}
    assert usage["image:v1:a1"].images == 1 and usage["image:v1:a1"].model == "pillow"
    assert usage["image-prompt:v1:a1"].output_tokens > 0
    assert ctx.progress_messages[:2] == ["Imagining the illustration", "Drawing the cover card"]
    assert ctx.actions[-1] == "emit image.completed"  # the event after every upload
    assert len(chats(scripted_llm)) == 1


async def test_openai_images_through_the_sdk(job, text_model, store, scripted_llm):
    settings = IllustratorSettings(
        image_provider="openai", images_base_url=scripted_llm.base_url, openai_api_key="test"
    )
    ctx = await handle(table_for(text_model, store, image_provider(settings)), job.blog())

    [image] = ctx.data(ImageCompletedEvent)
    [request] = [r for r in scripted_llm.requests if r.kind == "image"]
    assert request.path == "/v1/images/generations"
    assert request.body["model"] == "dall-e-3" and request.body["size"] == "1792x1024"
    assert request.body["response_format"] == "b64_json"
    assert request.headers["authorization"] == "Bearer test"
    assert request.prompt == image.prompt
    assert (image.provider, image.width, image.height) == ("openai", 1792, 1024)
    stored = await store.get(image.object_key)
    assert stored == solid_png(1792, 1024)  # what the API returned, byte for byte
    assert hashlib.sha256(stored).hexdigest() == image.sha256
    [square] = image.variants
    assert png_size(await store.get(square.object_key)) == (1024, 1024)
    [usage] = [e.data for e in ctx.published if e.type == "usage.recorded" and e.data.call == "image:v1:a1"]
    assert (usage.provider, usage.model, usage.images, usage.cost_usd) == ("openai", "dall-e-3", 1, 0.04)


async def test_regenerate_draws_a_new_version_from_the_latest_blog(table, job, store, scripted_llm):
    first = await handle(table, job.blog(title="First title"))
    [v1] = first.emitted(ImageCompletedEvent)
    before = {k: await store.get(k) for k in (v1.data.object_key, v1.data.variants[0].object_key)}
    edited = job.blog_edited(
        version=2, title="Edited title", markdown="# Edited title\n\nA keeper of lights."
    )
    request = regenerate(job, instructions="In watercolour.")

    ctx = await handle(table, request, [*first.history, edited])

    [image] = ctx.data(ImageCompletedEvent)
    assert image.version == 2 and ctx.emitted(ImageCompletedEvent)[0].causation_id == request.id
    assert image.object_key == f"jobs/{job.job_id}/cover-v2.png"
    assert image.variants[0].object_key == f"jobs/{job.job_id}/cover-v2-square.png"
    assert image.prompt.endswith("In watercolour.")
    assert image.sha256 != v1.data.sha256
    assert {k: await store.get(k) for k in before} == before  # v1 left in place, unchanged
    prompts = [r.prompt for r in chats(scripted_llm)]
    assert len(prompts) == 2 and "A keeper of lights." in prompts[1]


async def test_regenerate_never_draws_over_a_first_image_still_being_drawn(table, job):
    ctx = await handle(table, regenerate(job), [job.blog()])  # image v1 not announced yet
    assert ctx.data(ImageCompletedEvent)[0].version == 2


async def test_neither_a_regenerated_blog_nor_another_stages_request_is_drawn(table, job, scripted_llm):
    rewritten = BlogCompleted(request=job.request, version=3, regenerated=True, title="Third", markdown="# Third",
                              word_count=2, usage=TokenUsage(model="m"))  # fmt: skip
    for event in (job.envelope(BlogCompletedEvent, rewritten), regenerate(job, Stage.social)):
        ctx = await handle(table, event, [job.blog()])
        assert ctx.actions == []
    assert scripted_llm.requests == []


async def test_no_image_requested_means_no_call(table, scripted_llm):
    no_image = JobEvents.new(JobRequest(topic="A job without a picture", image=False))
    ctx = await handle(table, no_image.blog())
    assert ctx.actions == [] and scripted_llm.requests == []


async def test_a_stopped_job_is_not_drawn(table, job, scripted_llm):
    with pytest.raises(JobStopped):
        await handle(table, job.blog(), [job.job_cancelled()])
    assert scripted_llm.requests == []


async def test_regenerate_before_any_blog_fails_clearly(table, job):
    with pytest.raises(PermanentError) as failure:
        await handle(table, regenerate(job))
    assert failure.value.code == "not_ready"
