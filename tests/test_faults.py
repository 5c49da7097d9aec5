"""Replicas, crashes and bad input: every job still ends, nothing is done twice, nobody falls over."""

from __future__ import annotations

import asyncio
import json

import nats
import websockets
from nats.js.api import DeliverPolicy

from pipeline import BLOG_TITLE, run_job, script_pipeline, writer_jobs, ws_url
from pressroom_contracts import subjects
from pressroom_contracts.events import TERMINAL_TYPES
from pressroom_runtime import deadletter
from pressroom_testkit import TestBus

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


async def test_garbage_on_a_live_job_is_dead_lettered_and_the_job_completes(
    service_runner, scripted_llm, nats_url
):
    script_pipeline(scripted_llm)
    scripted_llm.hang(times=1)  # the writer's call waits: the job is live while the garbage arrives
    service_runner.start()
    nc = await nats.connect(nats_url)
    try:
        async with websockets.connect(ws_url(service_runner)) as ws:
            await ws.send(json.dumps({"type": "start", "request": {**REQUEST, "image": True}}))
            job_id = json.loads(await ws.recv())["job_id"]
            await asyncio.to_thread(scripted_llm.wait_for_requests, 1, 30)
            js = nc.jetstream()
            garbage = {
                event_type: (
                    await js.publish(subjects.content(job_id, event_type), b'{"type": "nonsense"')
                ).seq
                for event_type in ("job.requested", "research.completed", "blog.completed")
            }
            scripted_llm.release()
            async with asyncio.timeout(60):
                while True:
                    frame = json.loads(await ws.recv())
                    if frame["type"] == "event" and frame["event"]["type"] in TERMINAL_TYPES:
                        break
        assert frame["event"]["type"] == "job.completed"
        bus = TestBus(nc)
        taken_by = {
            "research": "job.requested",
            "writer": "research.completed",
            "social": "blog.completed",
            "illustrator": "blog.completed",
        }
        for durable, event_type in taken_by.items():
            await bus.acked(garbage[event_type], durable)
        await bus.acked(max(garbage.values()), "persistence")
        letters = {
            (letter.consumer, letter.stream_seq): letter
            for _, letter in await deadletter.letters(nc, job_id=job_id)
        }
        assert await bus.stored_count(job_id, "stage.failed") == 0
    finally:
        await nc.close()
    expected = {
        ("research", garbage["job.requested"]),
        ("writer", garbage["research.completed"]),
        ("social", garbage["blog.completed"]),
        ("illustrator", garbage["blog.completed"]),
        *(("persistence", seq) for seq in garbage.values()),
    }
    assert set(letters) == expected
    assert all(letter.reason == "invalid_event" for letter in letters.values())
    assert all(
        service_runner.replica(name).process.alive()
        for name in ("research", "writer", "social", "illustrator", "persistence")
    )
