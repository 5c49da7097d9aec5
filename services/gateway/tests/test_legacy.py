"""`/content`, the original single-shot protocol, over a real WebSocket against a real nats-server."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager

from pressroom_contracts import subjects


@asynccontextmanager
async def started_jobs(pipeline):
    """Job ids as the gateway starts them (it alone knows them: /content does not tell the client)."""
    queue: asyncio.Queue[str] = asyncio.Queue()

    async def on_requested(msg) -> None:
        await queue.put(subjects.parse_content(msg.subject)[0])

    sub = await pipeline.nc.subscribe(subjects.content_of_type("job.requested"), cb=on_requested)
    await pipeline.sync()  # the server has our interest before the gateway publishes
    try:
        yield queue
    finally:
        await sub.unsubscribe()


async def next_job(queue: asyncio.Queue[str]) -> str:
    async with asyncio.timeout(5):
        return await queue.get()


async def test_content_streams_progress_then_results(gateway, ws_connect, pipeline):
    async with started_jobs(pipeline) as jobs, ws_connect(gateway, "/content") as client:
        await client.send({"topic": "Solar power for homes", "research": True})
        job_id = await next_job(jobs)
        job = pipeline.job(job_id)
        for event in (
            job.progress(1, "Searching the knowledge base for 'Solar power for homes'"),
            job.research(sources=3),
            job.usage(),
            job.blog(title="Sunny homes", markdown="# Sunny homes\n\nPanels."),
            job.social("linkedin", "A LinkedIn post"),
            job.social("x", "An X post"),
            job.image(),
            job.job_completed(title="Sunny homes"),
        ):
            await pipeline.publish(event)

        progress = [await client.expect("progress_event") for _ in range(7)]
        assert [p["payload"] for p in progress] == [
            "Started writing about 'Solar power for homes' with research",
            "Searching the knowledge base for 'Solar power for homes'",
            "Research done: 3 sources found",
            "Blog post written: 'Sunny homes' (4 words)",
            "linkedin post ready",
            "x post ready",
            "Illustration ready",
        ]
        results = await client.expect("results")
        assert results["payload"] == {
            "job_id": job_id,
            "blog": {"title": "Sunny homes", "markdown": "# Sunny homes\n\nPanels."},
            "social": {"linkedin": "A LinkedIn post", "x": "An X post"},
            "image": {"object_key": f"{job_id}/cover.png"},
        }
        closed = await client.closed()
        assert closed.rcvd is not None and closed.rcvd.code == 1000

    # The job used the default options apart from what the old protocol carries.
    stored = await pipeline.nc.jetstream().get_msg(
        subjects.STREAM, subject=subjects.content(job_id, "job.requested")
    )
    assert b'"platforms":["linkedin","x"]' in stored.data


async def test_content_reports_a_failed_job(gateway, ws_connect, pipeline):
    async with started_jobs(pipeline) as jobs, ws_connect(gateway, "/content") as client:
        await client.send({"topic": "Doomed topic", "research": False})
        job = pipeline.job(await next_job(jobs))
        await pipeline.publish(job.research())
        await pipeline.publish(job.job_failed("the model is unavailable"))

        assert (await client.expect("progress_event"))["payload"].endswith("without research")
        assert (await client.expect("progress_event"))["payload"] == "Research skipped: research off"
        error = await client.expect("error")
        assert error["payload"] == "blog failed: the model is unavailable"
        await client.closed()


async def test_content_refuses_invalid_requests(gateway, ws_connect):
    """With the code and message /v1/ws answers the same mistake."""
    cases = {
        "{nope": "invalid_json: frame is not valid JSON",
        "[" * 40: "invalid_json: frame is nested deeper than 32 levels",
        '{"research": true}': "invalid_request: topic: Field required",
        '{"topic": "ab"}': "invalid_request: topic: Value error, must be 3 to 500 characters",
        '{"topic": "Fine topic", "platforms": ["x"]}': "invalid_request: platforms: unknown field",
        '{"topic": "' + "x" * 70_000 + '"}': "frame_too_large: frames are limited to 65536 bytes",
    }
    for raw, reason in cases.items():
        async with ws_connect(gateway, "/content") as client:
            await client.send(raw)
            error = await client.expect("error")
            assert error["payload"].startswith(reason), error
            await client.closed()


async def test_content_client_leaving_early_releases_its_feed(gateway, ws_connect, pipeline, eventually):
    await eventually(lambda: gateway.feed_subscriptions() == 0, timeout=10, interval=0.05)
    async with started_jobs(pipeline) as jobs, ws_connect(gateway, "/content") as client:
        await client.send({"topic": "Walking away", "research": False})
        await next_job(jobs)
        assert (await client.expect("progress_event"))["payload"].startswith("Started writing")
        assert gateway.feed_subscriptions() == 2  # the job's feed: stored events and live deltas
    await eventually(lambda: gateway.feed_subscriptions() == 0, timeout=10, interval=0.05)


async def test_content_without_a_token_is_refused_unless_anonymous_is_allowed(gateway, ws_connect):
    async with ws_connect(gateway, "/content", token=None) as client:
        message = await client.recv()
        assert message["type"] == "error"
        assert message["payload"].startswith("unauthenticated")
        assert (await client.closed()).rcvd.code == 1008
    async with ws_connect(gateway, "/content", token="prk_wrong") as client:
        assert (await client.recv())["payload"].startswith("unauthenticated")


async def test_content_anonymous_clients_work_unchanged_when_allowed(gateway_factory, ws_connect, pipeline):
    async with (
        gateway_factory(allow_anonymous_legacy=True) as gw,
        started_jobs(pipeline) as jobs,
        ws_connect(gw, "/content", token=None) as client,
    ):
        await client.send({"topic": "The old way", "research": False})
        job_id = await next_job(jobs)
        assert (await client.expect("progress_event"))["payload"].startswith("Started writing")
        job = pipeline.job(job_id)
        await pipeline.publish(job.job_completed())
        assert (await client.expect("results"))["payload"]["job_id"] == job_id
    stored = await pipeline.nc.jetstream().get_last_msg(
        subjects.STREAM, subjects.content(job_id, "job.requested")
    )
    assert json.loads(stored.data)["data"]["owner"] == "anonymous"


async def test_content_token_in_the_query_string(gateway, ws_connect, pipeline):
    async with (
        started_jobs(pipeline) as jobs,
        ws_connect(gateway, f"/content?token={gateway.token}", token=None) as client,
    ):
        await client.send({"topic": "Keyed the old way", "research": False})
        job_id = await next_job(jobs)
        assert (await client.expect("progress_event"))["payload"].startswith("Started writing")
    stored = await pipeline.nc.jetstream().get_last_msg(
        subjects.STREAM, subjects.content(job_id, "job.requested")
    )
    assert json.loads(stored.data)["data"]["owner"] == gateway.client_id
