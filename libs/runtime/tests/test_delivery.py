"""The delivery policy on a real nats-server: ack, paced retry, terminate, stage.failed, dedup, metrics."""

from __future__ import annotations

import asyncio
import json

import nats
import pytest
from prometheus_client import REGISTRY

from pressroom_contracts import subjects, topology
from pressroom_contracts.events import (
    JobRequested,
    JobRequestedEvent,
    Producer,
    Stage,
    StageFailedEvent,
    encode_event,
)
from pressroom_contracts.jobs import JobRequest
from pressroom_devstack.provisioning import reset_nats
from pressroom_runtime.broker import Publisher, make_broker
from pressroom_runtime.consumer import bind_consumer
from pressroom_runtime.errors import PermanentError, TransientError
from pressroom_runtime.history import recorded

PRODUCER = Producer(service="test", replica="t-1")


def job_requested(job_id: str) -> JobRequestedEvent:
    return JobRequestedEvent(
        job_id=job_id, producer=PRODUCER, data=JobRequested(request=JobRequest(topic="delivery rules"))
    )


@pytest.fixture
async def stage(nats_url):
    """A research-like stage whose behaviour per job id the test scripts."""
    reset_nats(nats_url)
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
        await ctx.progress("done")

    bind_consumer(
        broker,
        consumer=topology.RESEARCH,
        accepts=(JobRequestedEvent,),
        handler=handler,
        publisher=publisher,
        producer=PRODUCER,
        stage=Stage.research,
    )
    await broker.start()
    try:
        yield publisher, calls
    finally:
        await broker.stop()


async def wait_for(check, timeout=30.0):
    async with asyncio.timeout(timeout):
        while not (result := await check()):  # noqa: ASYNC110 - polling remote state
            await asyncio.sleep(0.1)
        return result


async def stage_failed(nc, job_id):
    return [e for e in await recorded(nc, job_id, "stage.failed") if isinstance(e, StageFailedEvent)]


async def test_success_is_acked_once_and_duplicates_are_dropped(stage, nats_url):
    publisher, calls = stage
    event = job_requested("ok-1")
    first, again = await publisher.publish(event), await publisher.publish(event)
    assert first == again  # the stream dropped the duplicate and answered with the original's sequence
    nc = await nats.connect(nats_url)
    try:
        await wait_for(lambda: recorded(nc, "ok-1", "stage.progress"))
        info = await nc.jetstream().consumer_info(subjects.STREAM, "research")
        assert info.num_ack_pending == 0 and info.num_redelivered == 0
    finally:
        await nc.close()
    assert calls == [("ok-1", 1)]


async def test_a_transient_error_is_retried_with_a_pause(stage, nats_url):
    publisher, calls = stage
    await publisher.publish(job_requested("flaky-1"))
    nc = await nats.connect(nats_url)
    try:
        await wait_for(lambda: recorded(nc, "flaky-1", "stage.progress"))
    finally:
        await nc.close()
    attempts = [a for j, a in calls if j == "flaky-1"]
    assert attempts == [1, 2, 3]


async def test_a_permanent_error_terminates_and_announces_stage_failed(stage, nats_url):
    publisher, calls = stage
    await publisher.publish(job_requested("broken-1"))
    nc = await nats.connect(nats_url)
    try:
        (failed,) = await wait_for(lambda: stage_failed(nc, "broken-1"))
        await asyncio.sleep(1.5)
        assert [a for j, a in calls if j == "broken-1"] == [1]  # never retried
    finally:
        await nc.close()
    assert (failed.data.code, failed.data.retryable, failed.data.stage) == ("bad_key", False, "research")


async def test_an_unexpected_error_is_retried_until_max_deliver_then_fails_visibly(stage, nats_url):
    publisher, calls = stage
    await publisher.publish(job_requested("bug-1"))
    nc = await nats.connect(nats_url)
    try:
        (failed,) = await wait_for(lambda: stage_failed(nc, "bug-1"), timeout=60)
    finally:
        await nc.close()
    assert [a for j, a in calls if j == "bug-1"] == list(range(1, topology.RESEARCH.max_deliver + 1))
    assert failed.data.code == "internal_error" and failed.data.retryable


async def test_invalid_messages_are_rejected_with_the_reason_and_the_stage_keeps_serving(stage, nats_url):
    publisher, calls = stage
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await js.publish(subjects.content("junk-1", "job.requested"), b"{not json")
        wrong = json.loads(encode_event(job_requested("other-job")))
        await js.publish(subjects.content("junk-2", "job.requested"), json.dumps(wrong).encode())
        (bad_json,) = await wait_for(lambda: stage_failed(nc, "junk-1"))
        (mismatch,) = await wait_for(lambda: stage_failed(nc, "junk-2"))
        await publisher.publish(job_requested("ok-2"))
        await wait_for(lambda: recorded(nc, "ok-2", "stage.progress"))
    finally:
        await nc.close()
    assert bad_json.data.code == "invalid_event" and "invalid event" in bad_json.data.message
    assert "does not match its subject" in mismatch.data.message
    assert not any(j.startswith("junk") for j, _ in calls)


async def test_published_events_carry_trace_context_and_are_counted_without_job_ids(stage, nats_url):
    publisher, _ = stage
    nc = await nats.connect(nats_url)
    try:
        await publisher.publish(job_requested("traced-1"))
        await wait_for(lambda: recorded(nc, "traced-1", "stage.progress"))
        message = await nc.jetstream().get_last_msg(
            subjects.STREAM, subjects.content("traced-1", "stage.progress")
        )
    finally:
        await nc.close()
    assert message.headers is not None and "traceparent" in message.headers
    assert message.headers["Nats-Msg-Id"] == "traced-1:stage.progress:research:1:1"
    acked = REGISTRY.get_sample_value(
        "pressroom_messages_total", {"consumer": "research", "outcome": "acked"}
    )
    published = REGISTRY.get_sample_value("pressroom_events_published_total", {"type": "stage.progress"})
    assert acked and acked >= 1
    assert published and published >= 1
    assert not any("traced-1" in str(s.labels) for m in REGISTRY.collect() for s in m.samples), (
        "job ids in labels"
    )
