"""The delivery policy on a real nats-server: ack, paced retry, terminate and dead-letter, stage.failed,
dedup, job-state checks, trace context, metrics."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import nats
import pytest
from prometheus_client import REGISTRY

from pressroom_contracts import subjects, topology
from pressroom_contracts.events import (
    JobRequested,
    JobRequestedEvent,
    Producer,
    ResearchCompletedEvent,
    Stage,
    StageFailedEvent,
    encode_event,
)
from pressroom_contracts.jobs import JobRequest
from pressroom_contracts.queries import JobStatus
from pressroom_devstack.provisioning import reset_nats
from pressroom_runtime import deadletter
from pressroom_runtime.broker import Publisher, make_broker
from pressroom_runtime.consumer import Delivery, bind_consumer
from pressroom_runtime.errors import PermanentError, TransientError
from pressroom_runtime.history import recorded
from pressroom_runtime.jobstates import JobStates
from pressroom_testkit import JobEvents, TestBus, eventually

PRODUCER = Producer(service="test", replica="t-1")
FAST = Delivery(concurrency=4, retry_base=0.1, retry_max=0.5, drain=5.0, lag_interval=0.2)


def job_requested(job_id: str) -> JobRequestedEvent:
    return JobRequestedEvent(
        job_id=job_id, producer=PRODUCER, data=JobRequested(request=JobRequest(topic="delivery rules"))
    )


@pytest.fixture
async def nc(nats_url):
    reset_nats(nats_url)
    client = await nats.connect(nats_url)
    yield client
    await client.close()


@pytest.fixture
async def stage(nc, nats_url):
    """A research-like stage whose behaviour per job id the test scripts."""
    broker = make_broker(nats_url, "research:test")
    publisher = Publisher(broker)
    calls: list[tuple[str, int]] = []

    async def handler(event, ctx):
        calls.append((event.job_id, ctx.attempt))
        if event.job_id.startswith("flaky") and ctx.attempt < 3:
            raise TransientError("try again")
        if event.job_id.startswith("broken"):
            raise PermanentError("never works", code="bad_key")
        if event.job_id.startswith("bug"):
            raise KeyError("a bug")
        if event.job_id.startswith("costly"):  # paid for a call, then failed for good
            await ctx.usage("research:1", "openai-compatible", "fake-model", input_tokens=10)
            raise PermanentError("the answer was unusable", code="bad_answer")
        if event.job_id.startswith("chatty"):
            for step in range(1, 6):
                await ctx.progress(f"step {step}")
            return
        await ctx.progress("done")

    consumer = bind_consumer(
        broker,
        consumer=topology.RESEARCH,
        accepts=(JobRequestedEvent,),
        handler=handler,
        publisher=publisher,
        producer=PRODUCER,
        stage=Stage.research,
        delivery=FAST,
    )
    await broker.start()
    await consumer.start()
    try:
        yield publisher, calls
    finally:
        await consumer.stop()
        await broker.stop()


async def stage_failed(nc, job_id):
    return [e for e in await recorded(nc, job_id, "stage.failed") if isinstance(e, StageFailedEvent)]


async def letters_of(nc, job_id):
    return [letter for _, letter in await deadletter.letters(nc, job_id=job_id)]


async def test_success_is_acked_once_and_duplicates_are_dropped(stage, nc):
    publisher, calls = stage
    event = job_requested("ok-1")
    first, again = await publisher.publish(event), await publisher.publish(event)
    assert first == again  # the stream dropped the duplicate and answered with the original's sequence
    await TestBus(nc).acked(first, "research")
    info = await nc.jetstream().consumer_info(subjects.STREAM, "research")
    assert info.num_ack_pending == 0 and info.num_redelivered == 0
    assert calls == [("ok-1", 1)]
    assert await recorded(nc, "ok-1", "stage.progress")


async def test_progress_is_stored_in_order_before_the_input_is_acked(stage, nc):
    publisher, _ = stage
    seq = await publisher.publish(job_requested("chatty-1"))
    await TestBus(nc).acked(seq, "research")
    progress = await recorded(nc, "chatty-1", "stage.progress")
    assert [e.data.message for e in progress] == [f"step {n}" for n in range(1, 6)]


async def test_a_failed_try_keeps_what_it_paid_for_on_the_record_before_its_failure(stage, nc):
    publisher, _ = stage
    await publisher.publish(job_requested("costly-1"))
    await eventually(lambda: stage_failed(nc, "costly-1"))
    (usage,) = await recorded(nc, "costly-1", "usage.recorded")
    assert usage.data.input_tokens == 10 and usage.data.call == "research:1"
    assert await types_in_order(nc, "costly-1") == ["job.requested", "usage.recorded", "stage.failed"]


async def types_in_order(nc, job_id: str) -> list[str]:
    """The types of the job's stored events in stream order."""
    sub = await nc.jetstream().subscribe(subjects.content_of_job(job_id), ordered_consumer=True)
    try:
        types = []
        while True:
            msg = await sub.next_msg(timeout=5)
            types.append(subjects.parse_content(msg.subject)[1])
            if msg.metadata.num_pending == 0:
                return types
    finally:
        await sub.unsubscribe()


async def test_a_transient_error_is_retried_with_a_pause(stage, nc):
    publisher, calls = stage
    await publisher.publish(job_requested("flaky-1"))
    await eventually(lambda: recorded(nc, "flaky-1", "stage.progress"), timeout=30)
    attempts = [a for j, a in calls if j == "flaky-1"]
    assert attempts == [1, 2, 3]


async def test_a_permanent_error_terminates_announces_stage_failed_and_dead_letters(stage, nc):
    publisher, calls = stage
    seq = await publisher.publish(job_requested("broken-1"))
    await TestBus(nc).acked(seq, "research")  # terminated: the ack floor passed it, nothing to redeliver
    (failed,) = await stage_failed(nc, "broken-1")
    assert (failed.data.code, failed.data.retryable, failed.data.stage) == ("bad_key", False, "research")
    assert [a for j, a in calls if j == "broken-1"] == [1]  # never retried
    (letter,) = await letters_of(nc, "broken-1")
    assert (letter.consumer, letter.reason, letter.stream_seq) == ("research", "bad_key", seq)
    counted = REGISTRY.get_sample_value(
        "pressroom_dead_letters_total", {"consumer": "research", "reason": "bad_key"}
    )
    assert counted and counted >= 1


async def test_a_dead_letter_can_be_replayed_by_an_operator(stage, nc, nats_url):
    publisher, calls = stage
    seq = await publisher.publish(job_requested("broken-2"))
    await TestBus(nc).acked(seq, "research")
    [(letter_seq, letter)] = await deadletter.letters(nc, job_id="broken-2")
    listing = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "pressroom_runtime.deadletter", "list", "--job", "broken-2"],
        env={**os.environ, "NATS_URL": nats_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
    assert f"{letter_seq}\t" in listing.stdout and "bad_key" in listing.stdout
    replay = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "pressroom_runtime.deadletter", "replay", str(letter_seq)],
        env={**os.environ, "NATS_URL": nats_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert replay.returncode == 0, replay.stderr
    again = int(replay.stdout.split()[-1])
    assert again > seq
    await TestBus(nc).acked(again, "research")
    assert [a for j, a in calls if j == "broken-2"] == [1, 1]  # handled again, as a new message
    assert letter.subject == subjects.content("broken-2", "job.requested")


async def test_an_unexpected_error_is_retried_until_max_deliver_then_fails_visibly(stage, nc):
    publisher, calls = stage
    await publisher.publish(job_requested("bug-1"))
    (failed,) = await eventually(lambda: stage_failed(nc, "bug-1"), timeout=60)
    assert [a for j, a in calls if j == "bug-1"] == list(range(1, topology.RESEARCH.max_deliver + 1))
    assert failed.data.code == "internal_error" and failed.data.retryable
    (letter,) = await eventually(lambda: letters_of(nc, "bug-1"), timeout=30)
    assert (letter.reason, letter.deliveries) == ("internal_error", topology.RESEARCH.max_deliver)


async def test_invalid_messages_are_dead_lettered_without_failing_their_job(stage, nc):
    publisher, calls = stage
    js = nc.jetstream()
    live = await publisher.publish(job_requested("live-1"))
    bad_json = (await js.publish(subjects.content("live-1", "job.requested"), b"{not json")).seq
    wrong = json.loads(encode_event(job_requested("other-job")))
    mismatch = (await js.publish(subjects.content("junk-2", "job.requested"), json.dumps(wrong).encode())).seq
    await TestBus(nc).acked(max(live, bad_json, mismatch), "research")

    letters = {
        letter.stream_seq: letter
        for letter in await letters_of(nc, "live-1") + await letters_of(nc, "junk-2")
    }
    assert set(letters) == {bad_json, mismatch}
    assert letters[bad_json].reason == "invalid_event" and "invalid event" in letters[bad_json].detail
    assert letters[bad_json].data == b"{not json"
    assert "does not match its subject" in letters[mismatch].detail
    # The job whose subject the garbage was found on is not failed; its real input was handled.
    assert await stage_failed(nc, "live-1") == [] and await stage_failed(nc, "junk-2") == []
    assert calls == [("live-1", 1)]


async def test_a_job_nobody_requested_gets_no_work(nc, nats_url):
    broker = make_broker(nats_url, "writer:test")
    publisher = Publisher(broker)
    calls: list[str] = []

    async def handler(event, ctx):
        calls.append(event.job_id)

    consumer = bind_consumer(
        broker, consumer=topology.WRITER, accepts=(ResearchCompletedEvent,), handler=handler,
        publisher=publisher, producer=PRODUCER, stage=Stage.blog, delivery=FAST,
    )  # fmt: skip
    await broker.start()
    await consumer.start()
    try:
        bus = TestBus(nc)
        ghost, stopped, alive = (JobEvents.new(JobRequest(topic="ghost job")) for _ in range(3))
        await bus.publish(stopped.requested(owner="alice"))
        await bus.publish(alive.requested(owner="alice"))
        await JobStates(nc).advance(stopped.job_id, JobStatus.cancelled, "alice")
        last = max(
            [await bus.publish(ghost.research(), requested=False)]
            + [await bus.publish(job.research()) for job in (stopped, alive)]
        )
        await bus.acked(last, "writer")
    finally:
        await consumer.stop()
        await broker.stop()
    assert calls == [alive.job_id]
    (letter,) = await letters_of(nc, ghost.job_id)
    assert (letter.reason, letter.consumer) == ("job_unknown", "writer")
    assert await stage_failed(nc, ghost.job_id) == []  # never announced as that job's failure
    assert await letters_of(nc, stopped.job_id) == []  # a stopped job's input is simply acknowledged


async def test_published_events_continue_the_trace_and_are_counted_without_job_ids(stage, nc):
    publisher, _ = stage
    seq = await publisher.publish(job_requested("traced-1"))
    await TestBus(nc).acked(seq, "research")
    js = nc.jetstream()
    cause = await js.get_last_msg(subjects.STREAM, subjects.content("traced-1", "job.requested"))
    message = await js.get_last_msg(subjects.STREAM, subjects.content("traced-1", "stage.progress"))
    assert message.headers["Nats-Msg-Id"] == "traced-1:stage.progress:research:1:1"
    trace_of = lambda headers: headers["traceparent"].split("-")[1]  # noqa: E731
    assert trace_of(message.headers) == trace_of(cause.headers)  # one trace across the hop
    acked = REGISTRY.get_sample_value(
        "pressroom_messages_total", {"consumer": "research", "outcome": "acked"}
    )
    published = REGISTRY.get_sample_value("pressroom_events_published_total", {"type": "stage.progress"})
    assert acked and acked >= 1
    assert published and published >= 1
    assert not any("traced-1" in str(s.labels) for m in REGISTRY.collect() for s in m.samples), (
        "job ids in labels"
    )
