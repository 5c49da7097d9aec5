"""The publish checks (links, HTML, citations, language), across all six services as separate processes on
real servers."""

from __future__ import annotations

import asyncio
import json

import nats
import websockets
from nats.js.api import DeliverPolicy

from pipeline import SOCIAL_ANSWER, run_job, script_pipeline, stored, writer_jobs, ws_url
from pressroom_contracts import subjects
from pressroom_contracts.events import Producer, RegenerateRequested, RegenerateRequestedEvent, encode_event
from pressroom_testkit import TestBus

# A price for the scripted model, so the job's cost is real arithmetic and not zero.
PRICES = {
    "PRESSROOM_PRICES": json.dumps({"scripted-model": {"input_per_million": 100, "output_per_million": 400}})
}
FULL = {
    "topic": "Rooftop solar panels for homes",
    "research": True,
    "platforms": ["linkedin", "x", "threads"],
}


async def test_a_full_job_stores_every_artifact_within_limits_with_its_cost(
    service_runner, scripted_llm, database_url, s3
):
    script_pipeline(scripted_llm)
    service_runner.start(env=PRICES)

    watch = await run_job(service_runner, FULL)

    assert watch.types[-1] == "job.completed"
    rows = await stored(database_url, watch.job_id)
    assert [p["platform"] for p in rows["social"]] == ["linkedin", "threads", "x"]
    limits = {"linkedin": 3000, "threads": 500, "x": 280}
    for post in rows["social"]:
        assert post["characters"] <= limits[post["platform"]]
    research = next(e for e in watch.events if e["type"] == "research.completed")["data"]
    locations = {s["location"] for s in research["sources"]}
    (blog,) = rows["blogs"]
    cited = json.loads(blog["citations"]) if isinstance(blog["citations"], str) else blog["citations"]
    assert cited and {c["location"] for c in cited} <= locations
    (image,) = rows["images"]
    assert s3.client().stat_object(s3.bucket, image["object_key"]).size == image["size_bytes"]
    total = sum(float(u["cost_usd"]) for u in rows["usage"])
    assert total > 0 and abs(float(rows["job"]["cost_usd"]) - total) < 1e-6


async def test_a_permanent_failure_ends_the_job_with_the_reason_visible(
    service_runner, scripted_llm, database_url
):
    script_pipeline(scripted_llm)
    scripted_llm.fail(401, times=50)  # a bad key: never worth retrying
    service_runner.start()

    watch = await run_job(service_runner, {**FULL, "platforms": ["x"]})

    assert watch.types[-1] == "job.failed"
    failed = watch.events[-1]["data"]
    assert failed["stage"] == "blog" and failed["code"] == "provider_auth"
    assert "refused" in failed["message"]
    job = (await stored(database_url, watch.job_id))["job"]
    assert (job["status"], job["failure_code"]) == ("failed", "provider_auth")


async def test_a_transient_failure_is_retried_and_the_job_completes(service_runner, scripted_llm):
    script_pipeline(scripted_llm)
    scripted_llm.fail(500, times=2)  # the first two deliveries fail; the third succeeds
    service_runner.start()

    watch = await run_job(service_runner, {**FULL, "platforms": ["x"]})

    assert watch.types[-1] == "job.completed"
    assert len(writer_jobs(scripted_llm)) >= 3  # the outline asked on each of three deliveries
    assert sum(1 for t in watch.types if t == "blog.completed") == 1


async def test_an_event_delivered_twice_creates_nothing_twice(
    service_runner, scripted_llm, database_url, nats_url
):
    script_pipeline(scripted_llm)
    service_runner.start()
    watch = await run_job(service_runner, {**FULL, "platforms": ["linkedin", "x"]})
    calls = len(scripted_llm.requests)

    # Deliver the stored blog.completed again, as a redelivery past the stream's duplicate window would.
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        blog = await js.get_last_msg(subjects.STREAM, subjects.content(watch.job_id, "blog.completed"))
        assert blog.subject is not None and blog.data is not None
        again = await js.publish(blog.subject, blog.data)  # no Nats-Msg-Id: the stream keeps it
        # Handled by everyone who takes blog.completed: anything it did is done by then.
        for durable in ("social", "illustrator", "persistence"):
            await TestBus(nc).acked(again.seq, durable)
    finally:
        await nc.close()

    assert len(scripted_llm.requests) == calls, "a redelivered input paid for its model calls again"
    rows = await stored(database_url, watch.job_id)
    assert len(rows["blogs"]) == 1 and len(rows["social"]) == 2 and len(rows["images"]) == 1


async def test_regenerating_only_the_x_post_bumps_its_version_and_leaves_the_rest(
    service_runner, scripted_llm, database_url, nats_url
):
    script_pipeline(scripted_llm)
    service_runner.start()
    watch = await run_job(service_runner, {**FULL, "platforms": ["linkedin", "x"]})
    before = await stored(database_url, watch.job_id)
    scripted_llm.when("post promoting this blog post", "A fresh take on rooftop solar. " + SOCIAL_ANSWER[:40])

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        posts = await js.subscribe(
            subjects.content(watch.job_id, "social.completed"),
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
        )
        request = RegenerateRequestedEvent(
            job_id=watch.job_id,
            producer=Producer(service="gateway", replica="test"),
            data=RegenerateRequested(stage="social", platform="x"),
        )
        ack = await js.publish(subjects.content(watch.job_id, request.type), encode_event(request))
        posted = await posts.next_msg(timeout=30)
        post = json.loads(posted.data)["data"]
        # Every stage that takes regenerate.requested handled it: anything else it (wrongly) did shows.
        for durable in ("writer", "social", "illustrator", "persistence"):
            await TestBus(nc).acked(ack.seq, durable)
        # And the new post is recorded: it comes after the request, persistence may not have it yet.
        await TestBus(nc).acked(posted.metadata.sequence.stream, "persistence")
    finally:
        await nc.close()

    assert (post["platform"], post["version"]) == ("x", 2)
    after = await stored(database_url, watch.job_id)
    assert [(p["platform"], p["version"]) for p in after["social"]] == sorted(
        [(p["platform"], p["version"]) for p in before["social"]] + [("x", 2)]
    )
    assert [(b["version"], b["markdown"]) for b in after["blogs"]] == [
        (b["version"], b["markdown"]) for b in before["blogs"]
    ]
    assert [i["object_key"] for i in after["images"]] == [i["object_key"] for i in before["images"]]
    assert after["job"]["status"] == "completed"


async def test_after_a_cancel_no_provider_call_starts(service_runner, scripted_llm, database_url, nats_url):
    script_pipeline(scripted_llm)
    scripted_llm.hang(times=1)  # the writer's first call hangs: the job is mid-flight
    service_runner.start()

    async with websockets.connect(ws_url(service_runner)) as ws:
        await ws.send(json.dumps({"type": "start", "request": {**FULL, "platforms": ["x"]}}))
        job_id = json.loads(await ws.recv())["job_id"]
        await asyncio.to_thread(scripted_llm.wait_for_requests, 1, 30)
        await ws.send(json.dumps({"type": "cancel", "job_id": job_id, "ref": "k"}))
        async with asyncio.timeout(30):
            while True:
                frame = json.loads(await ws.recv())
                if frame["type"] == "event" and frame["event"]["type"] == "job.cancelled":
                    break
    scripted_llm.release()  # the hung call now fails; its next try must find the job cancelled
    nc = await nats.connect(nats_url)
    try:
        research = await nc.jetstream().get_last_msg(
            subjects.STREAM, subjects.content(job_id, "research.completed")
        )
        assert research.seq is not None
        await TestBus(nc).acked(research.seq, "writer", timeout=60)  # the writer is done with it
    finally:
        await nc.close()

    assert len(scripted_llm.requests) == 1
    job = (await stored(database_url, job_id))["job"]
    assert job["status"] == "cancelled"
