"""Replicas, crashes and bad input: every job still ends, nothing is done twice, nobody falls over."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import nats
from nats.js.api import DeliverPolicy

from pipeline import BLOG_TITLE, run_job, script_pipeline, writer_jobs
from pressroom_contracts import subjects

REQUEST = {"topic": "Rooftop solar panels for homes", "research": True, "platforms": ["x"], "image": False}


async def test_two_writer_replicas_share_the_work(service_runner, scripted_llm):
    script_pipeline(scripted_llm)
    service_runner.start(replicas={"writer": 2})

    watches = await asyncio.gather(*(run_job(service_runner, REQUEST) for _ in range(6)))

    writers = set()
    for watch in watches:
        assert watch.types[-1] == "job.completed"
        blogs = [e for e in watch.events if e["type"] == "blog.completed"]
        assert len(blogs) == 1
        writers.add(blogs[0]["producer"]["replica"])
    assert writers == {"writer-0", "writer-1"}
    assert len(writer_jobs(scripted_llm)) == 6, "a message was handled by more than one replica"


async def test_a_job_completes_when_the_busy_writer_replica_is_killed(service_runner, scripted_llm, nats_url):
    script_pipeline(scripted_llm)
    service_runner.start(replicas={"writer": 2})
    scripted_llm.hang(times=1)  # the first model call (the writer's) never answers: that replica is busy

    nc = await nats.connect(nats_url)
    try:
        progress = await nc.jetstream().subscribe(
            subjects.content_of_type("stage.progress"),
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
        )
        job = asyncio.create_task(run_job(service_runner, REQUEST, timeout=150))
        busy = await _first_writer(progress)
    finally:
        await nc.close()
    service_runner.kill("writer", int(busy.rsplit("-", 1)[1]))
    scripted_llm.release()

    # The killed replica never acked: after the ack wait the message goes to the other replica.
    watch = await job
    assert watch.types[-1] == "job.completed"
    (blog,) = [e for e in watch.events if e["type"] == "blog.completed"]
    assert blog["producer"]["replica"] != busy
    assert blog["data"]["title"] == BLOG_TITLE


async def _first_writer(progress) -> str:
    """The writer replica that announced it is writing."""
    async with asyncio.timeout(30):
        while True:
            event = json.loads((await progress.next_msg(timeout=30)).data)
            if event["data"]["stage"] == "blog":
                return event["producer"]["replica"]


async def test_malformed_messages_are_rejected_and_every_service_keeps_serving(
    service_runner, scripted_llm, nats_url
):
    script_pipeline(scripted_llm)
    service_runner.start()
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        failed = await js.subscribe(
            subjects.content("garbage-job", "stage.failed"),
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
        )
        for event_type in ("job.requested", "research.completed", "blog.completed"):
            await js.publish(subjects.content("garbage-job", event_type), b'{"type": "nonsense"')
        reasons: dict[str, dict[str, Any]] = {}
        async with asyncio.timeout(30):
            while len(reasons) < 4:  # research, blog (writer), social, image (illustrator)
                event = json.loads((await failed.next_msg(timeout=30)).data)
                reasons[event["data"]["stage"]] = event["data"]
    finally:
        await nc.close()
    assert set(reasons) == {"research", "blog", "social", "image"}
    assert all(r["code"] == "invalid_event" and not r["retryable"] for r in reasons.values())
    assert "invalid event" in reasons["blog"]["message"]

    watch = await run_job(service_runner, {**REQUEST, "image": True})
    assert watch.types[-1] == "job.completed"
    assert all(
        service_runner.replica(name).process.alive()
        for name in ("research", "writer", "social", "illustrator")
    )
