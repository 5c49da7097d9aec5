"""REST `/v1/jobs…` over real HTTP (uvicorn) with real NATS, PostgreSQL (the persistence service as a
process, answering query.job / query.jobs) and S3 (SeaweedFS). The stages are played by the test."""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from pressroom_contracts.events import ImageCompleted, ImageCompletedEvent, ImageVariant, PublishChecks
from pressroom_contracts.jobs import JobRequest
from pressroom_contracts.topology import PROFILES_BUCKET
from pressroom_devstack.env import service_env, without_contract
from pressroom_devstack.objectstore import S3Info
from pressroom_devstack.provisioning import reset_nats
from pressroom_gateway.idempotency import IdempotencyStore, Record, fingerprint
from pressroom_gateway.presign import StorageSettings
from pressroom_runtime.history import recorded
from pressroom_testkit.events import JobEvents
from pressroom_testkit.runner import ServiceRunner

from .conftest import Gateway, Pipeline, TestKey, new_key, running_gateway

REQUEST = {"topic": "Heat pumps in old houses", "research": False, "platforms": ["linkedin", "x"]}
BLOG_MARKDOWN = (
    "## Why now\n\nHeat pumps [work](https://example.com/hp) in old houses too.\n\n"
    "<script>alert('x')</script>\n\n[click](javascript:alert(1))\n"
)


def png(width: int, height: int, shade: int) -> bytes:
    """A valid grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes([shade]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# ---- the stack ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def persistence(nats_url: str, database_url: str, s3: S3Info, tmp_path_factory) -> Iterator[ServiceRunner]:
    # An empty stream: persistence's durable does not first work through other modules' events.
    reset_nats(nats_url)
    env = service_env(without_contract(os.environ), nats_url=nats_url, database_url=database_url, s3=s3)
    runner = ServiceRunner(env, tmp_path_factory.mktemp("rest-logs"))
    try:
        runner.start("persistence")
        yield runner
    finally:
        runner.stop()


def storage_settings(s3: S3Info) -> StorageSettings:
    host, port = s3.endpoint.rsplit(":", 1)
    assert host == "127.0.0.1"
    # Browsers reach the store by another name than the gateway does: URLs are signed for that one.
    return StorageSettings(
        endpoint=s3.endpoint,
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        bucket=s3.bucket,
        public_endpoint=f"localhost:{port}",
    )


@pytest.fixture(scope="module")
async def gw(
    persistence: ServiceRunner, nats_url: str, test_key: TestKey, s3: S3Info
) -> AsyncIterator[Gateway]:
    async with running_gateway(
        nats_url, test_key, job_rate="1000/minute", blocklist="forbidden fruit"
    ) as gateway:
        gateway.app.state.services.storage_settings = storage_settings(s3)
        yield gateway


def api(gateway: Gateway, key: TestKey | None = None) -> httpx.AsyncClient:
    token = key.token if key else gateway.token
    return httpx.AsyncClient(
        base_url=gateway.http_url, timeout=10, headers={"Authorization": f"Bearer {token}"}
    )


async def create(
    client: httpx.AsyncClient, request: dict[str, Any] | None = None, *, key: str | None = None
) -> str:
    headers = {"Idempotency-Key": key} if key else {}
    response = await client.post("/v1/jobs", json=request or REQUEST, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


async def job_state(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def produce(pipeline: Pipeline, s3: S3Info, job_id: str) -> JobEvents:
    """What the stages would do for a job created over REST: research, blog, two posts, an image with a
    square variant (the files put in the bucket first)."""
    job = pipeline.job(job_id, JobRequest.model_validate(REQUEST))
    cover, square = png(4, 2, 200), png(2, 2, 90)
    store = s3.client()
    for key, data in ((f"{job_id}/cover.png", cover), (f"{job_id}/square.png", square)):
        store.put_object(s3.bucket, key, io.BytesIO(data), len(data), content_type="image/png")
    image = ImageCompletedEvent(
        job_id=job_id,
        producer=pipeline.producer,
        data=ImageCompleted(
            object_key=f"{job_id}/cover.png",
            prompt="a heat pump beside a stone house",
            width=4,
            height=2,
            content_type="image/png",
            sha256="0" * 64,
            size_bytes=len(cover),
            provider="cover-card",
            variants=[
                ImageVariant(
                    name="square",
                    object_key=f"{job_id}/square.png",
                    width=2,
                    height=2,
                    sha256="1" * 64,
                    size_bytes=len(square),
                )
            ],
        ),
    )
    blog = job.blog(title="Heat pumps, old walls", markdown=BLOG_MARKDOWN)
    checks = PublishChecks(removed_links=["https://invented.example"], language="en", detected_language="en")
    blog = blog.model_copy(update={"data": blog.data.model_copy(update={"checks": checks})})
    for event in (
        job.research(),
        blog,
        job.social("linkedin", "Old houses can run on heat pumps. Here is how."),
        job.social("x", "Heat pumps work in old houses too."),
        image,
    ):
        await pipeline.publish(event)
    return job


async def completed(client: httpx.AsyncClient, job_id: str, eventually) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        state = await job_state(client, job_id)
        return state if state["job"]["status"] == "completed" and state["images"] else None

    return await eventually(done, timeout=20)


# ---- create, list, get --------------------------------------------------------------------------------


async def test_create_then_get_at_once_then_list_with_filters_and_paging(gw, nats_url, eventually):
    lister = await new_key(nats_url, "lister")  # a client of its own: its list holds exactly these jobs
    async with api(gw, lister) as client:
        response = await client.post("/v1/jobs", json={**REQUEST, "topic": "First topic"})
        assert response.status_code == 202
        body = response.json()
        first = body["job_id"]
        assert body == {
            "job_id": first,
            "events_url": f"/v1/jobs/{first}/events",
            "job_url": f"/v1/jobs/{first}",
        }
        assert response.headers["location"] == f"/v1/jobs/{first}"

        # Readable at once, before persistence may have recorded it.
        state = await job_state(client, first)
        assert state["job"]["id"] == first
        assert state["job"]["status"] in ("requested", "running")
        assert state["job"]["owner"] == lister.client_id
        assert state["job"]["topic"] == "First topic"
        assert state["links"]["events"] == f"/v1/jobs/{first}/events"

        second = await create(client, {**REQUEST, "topic": "Second topic"})
        third = await create(client, {**REQUEST, "topic": "Third topic"})

        async def listed() -> list[dict[str, Any]]:
            response = await client.get("/v1/jobs")
            assert response.status_code == 200, response.text
            jobs = response.json()["jobs"]
            return jobs if len(jobs) == 3 else []

        jobs = await eventually(listed)
        assert [j["id"] for j in jobs] == [third, second, first]  # newest first
        assert all(j["owner"] == lister.client_id for j in jobs)
        stamps = [datetime.fromisoformat(j["created_at"]) for j in jobs]
        assert stamps == sorted(stamps, reverse=True)

        # Cursor paging: the same order, no job twice, the end marked by a null cursor.
        page = (await client.get("/v1/jobs", params={"limit": 2})).json()
        assert [j["id"] for j in page["jobs"]] == [third, second] and page["next_cursor"]
        page = (await client.get("/v1/jobs", params={"limit": 2, "cursor": page["next_cursor"]})).json()
        assert [j["id"] for j in page["jobs"]] == [first] and page["next_cursor"] is None

        # Status and date filters (exclusive bounds).
        assert (await client.get("/v1/jobs", params={"status": "completed"})).json()["jobs"] == []
        requested = (await client.get("/v1/jobs", params={"status": "requested"})).json()["jobs"]
        assert {j["id"] for j in requested} <= {first, second, third}
        oldest, newest = jobs[-1]["created_at"], jobs[0]["created_at"]

        async def ids(**params: Any) -> list[str]:
            response = await client.get("/v1/jobs", params=params)
            assert response.status_code == 200, response.text
            return [j["id"] for j in response.json()["jobs"]]

        assert await ids(created_after=oldest) == [third, second]
        assert await ids(created_before=newest) == [second, first]
        assert await ids(created_after=oldest, created_before=newest) == [second]
        assert await ids(created_before=newest, limit=1) == [second]
        later = (datetime.fromisoformat(newest) + timedelta(hours=1)).isoformat()
        assert await ids(created_after=later) == []

        # Bad parameters are refused with the error body.
        for params in ({"limit": 0}, {"status": "sleeping"}, {"cursor": "nonsense"}):
            response = await client.get("/v1/jobs", params=params)
            assert response.status_code == 422, params
            assert response.json()["error"]["code"] == "invalid_request"

    # Another client sees none of them.
    async with api(gw) as client:
        listed_ids = [j["id"] for j in (await client.get("/v1/jobs", params={"limit": 100})).json()["jobs"]]
        assert not {first, second, third} & set(listed_ids)


async def test_get_has_sanitised_html_and_presigned_image_urls(gw, pipeline, s3, eventually):
    async with api(gw) as client:
        job_id = await create(client)
        await produce(pipeline, s3, job_id)
        state = await completed(client, job_id, eventually)

    blog = state["blog"]
    assert blog["title"] == "Heat pumps, old walls" and blog["version"] == 1
    # What the checks found, and the SEO pack the export's front matter uses, beside the text.
    assert blog["checks"]["removed_links"] == ["https://invented.example"]
    assert blog["checks"]["detected_language"] == "en"
    assert state["social"]["x"]["checks"] is None  # produced without checks here
    assert blog["seo"]["slug"] == "heat-pumps-old-walls" and blog["seo"]["title"]
    assert 0 < len(blog["seo"]["meta_description"]) <= 155
    html = blog["html"]
    assert "<h2>Why now</h2>" in html
    assert '<a href="https://example.com/hp" rel="noopener noreferrer">work</a>' in html
    assert "<script" not in html and "javascript:" not in html.replace("[click](javascript:alert(1))", "")
    assert 'href="javascript' not in html
    assert set(state["social"]) == {"linkedin", "x"}

    image = state["images"]
    url = image["url"]
    assert urlsplit(url).netloc == f"localhost:{s3.endpoint.rsplit(':', 1)[1]}"  # the public endpoint
    assert "X-Amz-Signature=" in url
    assert datetime.fromisoformat(image["url_expires_at"]) > datetime.fromisoformat(
        state["job"]["created_at"]
    )
    async with httpx.AsyncClient(timeout=10) as browser:
        downloaded = await browser.get(url)
        assert downloaded.status_code == 200
        assert downloaded.content == png(4, 2, 200)
        (variant,) = image["variants"]
        assert variant["name"] == "square"
        assert (await browser.get(variant["url"])).content == png(2, 2, 90)
        # The bucket stays private: the same object without a signature is refused.
        unsigned = url.split("?", 1)[0]
        assert (await browser.get(unsigned)).status_code in (401, 403)


# ---- idempotency ----------------------------------------------------------------------------------------


async def test_idempotency_key_gives_the_same_job_once(gw, pipeline, other_key):
    async with api(gw) as client:
        key = f"key-{os.urandom(4).hex()}"
        first = await client.post("/v1/jobs", json=REQUEST, headers={"Idempotency-Key": key})
        again = await client.post("/v1/jobs", json=REQUEST, headers={"Idempotency-Key": key})
        assert first.status_code == again.status_code == 202
        assert first.json() == again.json()
        assert again.headers["idempotent-replayed"] == "true"
        job_id = first.json()["job_id"]
        assert len(await recorded(pipeline.nc, job_id, "job.requested")) == 1

        # The same key with another request is refused, not silently answered with the first job.
        changed = await client.post(
            "/v1/jobs", json={**REQUEST, "topic": "Something else"}, headers={"Idempotency-Key": key}
        )
        assert changed.status_code == 422
        assert changed.json()["error"]["code"] == "idempotency_key_reused"

        # Without a key, or with another one: new jobs.
        assert await create(client) != job_id
        assert await create(client, key=key + "-2") != job_id

    # Keys are per client.
    async with api(gw, other_key) as client:
        theirs = await create(client, key=key)
        assert theirs != job_id


async def test_idempotency_key_completes_a_creation_that_never_published(gw, pipeline):
    """The key was recorded but job.requested never reached the stream (a crash in between): the repeat
    publishes it under the recorded id instead of answering with a job that does not exist."""
    key = f"key-{os.urandom(4).hex()}"
    store = IdempotencyStore(gw.app.state.services.bus)
    orphan = "0190abcd-0000-7000-8000-00000000dead"
    await store.claim(gw.client_id, key, Record(orphan, fingerprint(JobRequest.model_validate(REQUEST))))
    async with api(gw) as client:
        response = await client.post("/v1/jobs", json=REQUEST, headers={"Idempotency-Key": key})
    assert response.status_code == 202
    assert response.json()["job_id"] == orphan
    (stored,) = await recorded(pipeline.nc, orphan, "job.requested")
    assert stored.data.owner == gw.client_id


# ---- isolation ----------------------------------------------------------------------------------------


async def test_someone_elses_job_is_not_found_everywhere(gw, other_key, pipeline, s3, eventually):
    async with api(gw) as client:
        job_id = await create(client)
        await produce(pipeline, s3, job_id)
        await completed(client, job_id, eventually)

    async with api(gw, other_key) as client:
        attempts = [
            client.get(f"/v1/jobs/{job_id}"),
            client.post(f"/v1/jobs/{job_id}/cancel"),
            client.put(f"/v1/jobs/{job_id}/blog", json={"title": "Mine", "markdown": "now"}),
            client.put(f"/v1/jobs/{job_id}/social/x", json={"text": "mine"}),
            client.post(f"/v1/jobs/{job_id}/regenerate", json={"stage": "blog"}),
            client.get(f"/v1/jobs/{job_id}/export.md"),
            client.get(f"/v1/jobs/{job_id}/export.zip"),
            client.get(f"/v1/jobs/{job_id}/events"),
        ]
        for attempt in attempts:
            response = await attempt
            assert response.status_code == 404, (response.request.url, response.text)
            assert response.json() == {"error": {"code": "not_found", "message": f"no job {job_id}"}}
        listed = (await client.get("/v1/jobs", params={"limit": 100})).json()["jobs"]
        assert job_id not in {j["id"] for j in listed}
    assert await recorded(pipeline.nc, job_id, "cancel.requested") == []
    assert await recorded(pipeline.nc, job_id, "blog.edited") == []

    async with api(gw) as client:
        for missing in ("0190abcd-0000-7000-8000-000000000404", "no.such.job"):
            response = await client.get(f"/v1/jobs/{missing}")
            assert response.status_code == 404, missing
    async with httpx.AsyncClient(base_url=gw.http_url, timeout=10) as anonymous:
        response = await anonymous.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthenticated"


# ---- edits ----------------------------------------------------------------------------------------------


async def test_edit_blog_stores_new_versions(gw, pipeline, s3, eventually):
    async with api(gw) as client:
        job_id = await create(client)
        response = await client.put(f"/v1/jobs/{job_id}/blog", json={"title": "T", "markdown": "x"})
        assert response.status_code == 409  # nothing to edit yet
        assert response.json()["error"]["code"] == "not_ready"

        await produce(pipeline, s3, job_id)
        await completed(client, job_id, eventually)
        edit = {"title": "Heat pumps, revisited", "markdown": "## Better\n\nShorter **and** clearer."}
        response = await client.put(f"/v1/jobs/{job_id}/blog", json=edit)
        assert response.status_code == 202, response.text
        assert response.json() == {"job_id": job_id, "version": 2}
        # At once again, before persistence recorded the first edit: the next version, not a lost edit.
        response = await client.put(f"/v1/jobs/{job_id}/blog", json={**edit, "title": "Third take"})
        assert response.json()["version"] == 3

        async def latest() -> dict[str, Any] | None:
            blog = (await job_state(client, job_id))["blog"]
            return blog if blog["version"] == 3 else None

        blog = await eventually(latest)
        assert blog["title"] == "Third take" and blog["origin"] == "edited"
        assert blog["editor"] == gw.client_id
        assert blog["markdown"] == edit["markdown"]
        assert "<strong>and</strong>" in blog["html"]
        assert [(v["version"], v["origin"]) for v in blog["versions"]] == [
            (1, "generated"),
            (2, "edited"),
            (3, "edited"),
        ]
        (stored, _) = await recorded(pipeline.nc, job_id, "blog.edited")
        assert stored.data.editor == gw.client_id and stored.data.word_count == 5

        for bad in ({"title": "", "markdown": "x"}, {"title": "T"}, {"title": "T", "markdown": "  "}):
            response = await client.put(f"/v1/jobs/{job_id}/blog", json=bad)
            assert response.status_code == 422, bad
            assert response.json()["error"]["code"] == "invalid_request"


async def test_a_profile_rides_on_its_owners_jobs_only_and_edits_become_its_examples(
    gw, other_key, pipeline, s3, eventually
):
    voice = {"description": "Warm and plain.", "use_words": ["neighbours"], "examples": ["We put panels up."]}
    async with api(gw) as client, api(gw, other_key) as other:
        response = await client.put(
            "/v1/profile", json={"voice": voice, "link_template": "https://blog.example.com/{slug}"}
        )
        assert response.status_code == 200, response.text
        response = await client.put("/v1/profile", json={"link_template": "ftp://example.com/post"})
        assert response.status_code == 422 and "link_template" in response.json()["error"]["message"]
        assert (await client.get("/v1/profile")).json()["voice"]["description"] == "Warm and plain."

        mine, theirs = await create(client), await create(other)
        (requested,) = await recorded(pipeline.nc, mine, "job.requested")
        assert requested.data.voice.description == "Warm and plain."
        assert requested.data.link_template == "https://blog.example.com/{slug}"
        (their_request,) = await recorded(pipeline.nc, theirs, "job.requested")
        assert their_request.data.voice is None and their_request.data.link_template is None

        # A person's edit becomes an example of the voice, in the owner's next job.
        await produce(pipeline, s3, mine)
        await completed(client, mine, eventually)
        edit = {"title": "Our roof", "markdown": "We did it our way, with the neighbours."}
        assert (await client.put(f"/v1/jobs/{mine}/blog", json=edit)).status_code == 202
        newest = "# Our roof\n\nWe did it our way, with the neighbours."
        assert (await client.get("/v1/profile")).json()["voice"]["edits"][
            -1
        ] == newest  # earlier edits before it
        (requested,) = await recorded(pipeline.nc, await create(client), "job.requested")
        assert requested.data.voice.edits[-1] == newest
        assert requested.data.voice.examples == ["We put panels up."]
        # An edit that shows no voice (a test edit) is stored as a version, not learned from.
        test_edit = {"title": "T", "markdown": "hello"}
        assert (await client.put(f"/v1/jobs/{mine}/blog", json=test_edit)).status_code == 202
        assert (await client.get("/v1/profile")).json()["voice"]["edits"][-1] == newest


async def test_a_profile_with_text_a_job_refuses_is_refused_and_an_old_one_ignored(gw, other_key, pipeline):
    """Its text goes into every prompt: a NUL is refused as in a job request. One stored before that
    rule no longer validates: the client's jobs run without it (and the client may replace it)."""
    async with api(gw, other_key) as client:
        response = await client.put("/v1/profile", json={"voice": {"use_words": ["bell\u0007"]}})
        assert response.status_code == 422
        assert response.json()["error"]["message"].startswith("voice.use_words[0]: ")
        kv = await pipeline.nc.jetstream().key_value(PROFILES_BUCKET.name)
        await kv.put(other_key.client_id, b'{"voice": {"description": "Warm\\u0000"}}')
        try:
            (requested,) = await recorded(pipeline.nc, await create(client), "job.requested")
            assert requested.data.voice is None
            response = await client.put("/v1/profile", json={"voice": {"description": "Warm."}})
            assert response.status_code == 200
            (requested,) = await recorded(pipeline.nc, await create(client), "job.requested")
            assert requested.data.voice is not None and requested.data.voice.description == "Warm."
        finally:
            await kv.delete(other_key.client_id)


async def test_edit_social_post_within_its_limit(gw, pipeline, s3, eventually):
    async with api(gw) as client:
        job_id = await create(client)
        await produce(pipeline, s3, job_id)
        await completed(client, job_id, eventually)

        response = await client.put(f"/v1/jobs/{job_id}/social/x", json={"text": "y" * 281})
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "over_limit"
        assert "280" in response.json()["error"]["message"]

        response = await client.put(f"/v1/jobs/{job_id}/social/x", json={"text": "Short and edited."})
        assert response.status_code == 202
        assert response.json() == {"job_id": job_id, "version": 2}

        response = await client.put(f"/v1/jobs/{job_id}/social/threads", json={"text": "hi"})
        assert response.status_code == 409  # the job has no Threads post
        response = await client.put(f"/v1/jobs/{job_id}/social/myspace", json={"text": "hi"})
        assert response.status_code == 422

        async def edited() -> dict[str, Any] | None:
            post = (await job_state(client, job_id))["social"]["x"]
            return post if post["version"] == 2 else None

        post = await eventually(edited)
        assert post["text"] == "Short and edited." and post["origin"] == "edited"
        assert post["editor"] == gw.client_id and post["characters"] == 17 and post["limit"] == 280


# ---- regenerate, cancel ---------------------------------------------------------------------------------


async def test_regenerate_publishes_the_request(gw, pipeline, s3, eventually):
    async with api(gw) as client:
        job_id = await create(client)
        response = await client.post(f"/v1/jobs/{job_id}/regenerate", json={"stage": "image"})
        assert response.status_code == 409  # nothing drawn yet

        await produce(pipeline, s3, job_id)
        body = {"stage": "social", "platform": "x", "instructions": "More playful."}
        response = await client.post(f"/v1/jobs/{job_id}/regenerate", json=body)
        assert response.status_code == 202
        assert response.json() == {"job_id": job_id, "status": "accepted"}
        (event,) = await recorded(pipeline.nc, job_id, "regenerate.requested")
        assert (event.data.stage, event.data.platform, event.data.instructions) == (
            "social",
            "x",
            "More playful.",
        )
        assert event.data.requested_by == gw.client_id

        refused = [
            {"stage": "blog", "platform": "x"},  # a platform only for social
            {"stage": "social", "platform": "threads"},  # not one of the job's platforms
            {"stage": "research"},
            {"stage": "image", "instructions": "x" * 501},
        ]
        for body in refused:
            response = await client.post(f"/v1/jobs/{job_id}/regenerate", json=body)
            assert response.status_code == 422, body
        response = await client.post(f"/v1/jobs/{job_id}/regenerate", json={"stage": "blog"})
        assert response.status_code == 202
        assert len(await recorded(pipeline.nc, job_id, "regenerate.requested")) == 2


async def test_cancel_publishes_the_request_and_the_job_is_cancelled(gw, pipeline, eventually):
    async with api(gw) as client:
        job_id = await create(client)
        response = await client.post(f"/v1/jobs/{job_id}/cancel", json={"reason": "changed my mind"})
        assert response.status_code == 202
        assert response.json() == {"job_id": job_id, "status": "accepted"}
        (event,) = await recorded(pipeline.nc, job_id, "cancel.requested")
        assert event.data.reason == "changed my mind" and event.data.requested_by == gw.client_id

        async def cancelled() -> dict[str, Any] | None:
            state = await job_state(client, job_id)
            return state if state["job"]["status"] == "cancelled" else None

        state = await eventually(cancelled)
        assert state["job"]["cancel_reason"] == "changed my mind"
        response = await client.post(f"/v1/jobs/{job_id}/cancel")
        assert response.status_code == 409
        response = await client.post(f"/v1/jobs/{job_id}/regenerate", json={"stage": "blog"})
        assert response.status_code == 409


# ---- export ---------------------------------------------------------------------------------------------


async def test_export_markdown_and_zip(gw, pipeline, s3, eventually):
    async with api(gw) as client:
        job_id = await create(client)
        await produce(pipeline, s3, job_id)
        await completed(client, job_id, eventually)

        response = await client.get(f"/v1/jobs/{job_id}/export.md")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/markdown")
        assert 'filename="heat-pumps-old-walls.md"' in response.headers["content-disposition"]
        text = response.text
        # Front matter a static site generator reads as it is, then the post.
        _, matter, post = text.split("---\n", 2)
        fields = yaml.safe_load(matter)
        assert fields["title"] == "Heat pumps, old walls" and fields["slug"] == "heat-pumps-old-walls"
        assert isinstance(fields["date"], str) and fields["draft"] is False and fields["tags"]
        assert 0 < len(fields["description"]) <= 155 and fields["image"] == "images/cover.png"
        assert post.startswith("\n# Heat pumps, old walls\n\n## Why now\n")
        assert "### LinkedIn\n\nOld houses can run on heat pumps. Here is how." in text
        assert "### X\n\nHeat pumps work in old houses too." in text
        # Nothing that expires: the illustration by its path in the zip.
        assert "![a heat pump beside a stone house](images/cover.png)" in text
        assert "X-Amz-" not in text and "http://localhost" not in text

        # A download link can carry the token in the query string.
        async with httpx.AsyncClient(base_url=gw.http_url, timeout=10) as browser:
            response = await browser.get(f"/v1/jobs/{job_id}/export.zip", params={"token": gw.token})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(response.content))
        assert sorted(archive.namelist()) == [
            "images/cover.png",
            "images/square.png",
            "post.md",
            "social/linkedin.txt",
            "social/x.txt",
        ]
        post = archive.read("post.md").decode()
        assert yaml.safe_load(post.split("---\n", 2)[1])["image"] == "images/cover.png"
        assert post.split("---\n", 2)[2].startswith("\n# Heat pumps, old walls\n\n## Why now")
        assert "X-Amz-" not in post
        assert "![a heat pump beside a stone house](images/cover.png)" in post
        assert archive.read("social/x.txt").decode() == "Heat pumps work in old houses too.\n"
        assert archive.read("images/cover.png") == png(4, 2, 200)
        assert archive.read("images/square.png") == png(2, 2, 90)


# ---- admission ------------------------------------------------------------------------------------------


async def test_refused_topic_and_job_quota(gw, nats_url, test_key, pipeline):
    async with api(gw) as client:
        response = await client.post("/v1/jobs", json={**REQUEST, "topic": "Forbidden   FRUIT recipes"})
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "topic_refused"
        response = await client.post("/v1/jobs", json={**REQUEST, "topic": "no"})
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_request"
        assert "topic" in response.json()["error"]["message"]

    async with running_gateway(nats_url, test_key, job_rate="2/minute") as small, api(small) as client:
        await create(client)
        key = f"key-{os.urandom(4).hex()}"
        replayed = await create(client, key=key)
        response = await client.post("/v1/jobs", json=REQUEST)
        assert response.status_code == 429
        assert response.json()["error"]["code"] == "rate_limited"
        assert int(response.headers["retry-after"]) >= 1
        # Repeating an accepted request costs no quota.
        assert await create(client, key=key) == replayed
