"""Many messages at once per replica, on a real nats-server: overlap, no over-fetching, no work done twice,
outages waited out without spending deliveries, a graceful drain, lag gauges."""

from __future__ import annotations

import asyncio
from collections import Counter

import nats
import pytest
from prometheus_client import REGISTRY

from pressroom_contracts import subjects, topology
from pressroom_contracts.events import JobRequested, JobRequestedEvent, Producer, Stage
from pressroom_contracts.jobs import JobRequest
from pressroom_devstack.provisioning import reset_nats
from pressroom_runtime.broker import Publisher, make_broker
from pressroom_runtime.consumer import Consumer, Delivery, bind_consumer
from pressroom_runtime.errors import Unavailable
from pressroom_testkit import TestBus, eventually

PRODUCER = Producer(service="test", replica="t-1")


def job_requested(job_id: str) -> JobRequestedEvent:
    return JobRequestedEvent(
        job_id=job_id, producer=PRODUCER, data=JobRequested(request=JobRequest(topic="concurrency rules"))
    )


class Gate:
    """A handler that records who is inside and holds everyone until released."""

    def __init__(self) -> None:
        self.inside: set[str] = set()
        self.most_inside = 0
        self.entered: list[str] = []
        self.released = asyncio.Event()
        self.calls: Counter[str] = Counter()

    async def __call__(self, event, ctx) -> None:
        self.calls[event.job_id] += 1
        self.entered.append(event.job_id)
        self.inside.add(event.job_id)
        self.most_inside = max(self.most_inside, len(self.inside))
        try:
            await self.released.wait()
            await ctx.progress("done")
        finally:
            self.inside.discard(event.job_id)


@pytest.fixture
async def nc(nats_url):
    reset_nats(nats_url)
    client = await nats.connect(nats_url)
    yield client
    await client.close()


async def replica(
    nats_url: str, handler, delivery: Delivery, name: str = "research:test"
) -> tuple[Consumer, object]:
    broker = make_broker(nats_url, name)
    consumer = bind_consumer(
        broker, consumer=topology.RESEARCH, accepts=(JobRequestedEvent,), handler=handler,
        publisher=Publisher(broker), producer=PRODUCER, stage=Stage.research, delivery=delivery,
    )  # fmt: skip
    await broker.start()
    await consumer.start()
    return consumer, broker


async def stop(*replicas) -> None:
    for consumer, broker in replicas:
        await consumer.stop()
        await broker.stop()


async def consumer_info(nc):
    return await nc.jetstream().consumer_info(subjects.STREAM, "research")


async def test_a_replica_works_on_its_slots_at_once_and_never_holds_more(nc, nats_url):
    gate = Gate()
    slots = 4
    one = await replica(nats_url, gate, Delivery(concurrency=slots, lag_interval=0.2))
    try:
        bus = TestBus(nc)
        for n in range(10):
            await bus.publish(job_requested(f"slow-{n}"))

        async def full() -> bool:
            return len(gate.inside) == slots

        await eventually(full, timeout=30)  # four handlers are inside at the same time: they overlap
        info = await consumer_info(nc)
        assert (info.num_ack_pending, info.num_pending) == (slots, 10 - slots)  # fetched only what it holds

        # Released, the rest flows through; the server never hands this replica more than its slots.
        samples: list[int] = []

        async def sample() -> None:
            while True:
                samples.append((await consumer_info(nc)).num_ack_pending)
                await asyncio.sleep(0.01)

        sampler = asyncio.create_task(sample())
        gate.released.set()
        await bus.acked(10, "research")
        sampler.cancel()
    finally:
        await stop(one)
    assert samples and max(samples) <= slots and gate.most_inside == slots
    assert sorted(gate.calls) == sorted(f"slow-{n}" for n in range(10)) and set(gate.calls.values()) == {1}


async def test_replicas_share_the_work_without_doing_any_twice(nc, nats_url):
    gate = Gate()
    replicas = [await replica(nats_url, gate, Delivery(concurrency=3), f"research:r{i}") for i in range(2)]
    try:
        bus = TestBus(nc)
        for n in range(12):
            await bus.publish(job_requested(f"shared-{n}"))

        async def both_full() -> bool:
            return len(gate.inside) == 6

        await eventually(both_full, timeout=30)  # each replica holds three
        assert (await consumer_info(nc)).num_ack_pending == 6
        assert all(consumer.in_use == 3 for consumer, _ in replicas)
        gate.released.set()
        await bus.acked(12, "research")
        info = await consumer_info(nc)
    finally:
        await stop(*replicas)
    assert info.num_redelivered == 0
    assert len(gate.calls) == 12 and set(gate.calls.values()) == {1}


async def test_an_outage_is_waited_out_holding_the_message_and_fetching_nothing_new(nc, nats_url):
    down = 3
    seen: list[tuple[str, int]] = []

    async def handler(event, ctx):
        seen.append((event.job_id, ctx.attempt))
        if event.job_id == "waits" and sum(1 for j, _ in seen if j == "waits") <= down:
            raise Unavailable("the database is down")
        await ctx.progress("done")

    one = await replica(nats_url, handler, Delivery(concurrency=4, retry_base=0.2, retry_max=0.4))
    try:
        bus = TestBus(nc)
        await bus.publish(job_requested("waits"))

        async def waiting() -> bool:
            return len(seen) >= 2  # the first try and at least one paced retry

        await eventually(waiting, timeout=30)
        later = await bus.publish(job_requested("later"))
        await bus.acked(later, "research")
        info = await consumer_info(nc)
    finally:
        await stop(one)
    # Same delivery each time: the outage cost no delivery attempt, and nothing was redelivered.
    assert seen[: down + 1] == [("waits", 1)] * (down + 1)
    # Nothing new was fetched while a dependency was down: "later" came after the outage ended.
    assert seen[down + 1 :] == [("later", 1)]
    assert info.num_redelivered == 0


async def test_stop_lets_in_flight_messages_finish_and_hands_back_the_rest(nc, nats_url):
    gate = Gate()
    first = await replica(nats_url, gate, Delivery(concurrency=2, drain=0.5))
    bus = TestBus(nc)
    await bus.publish(job_requested("drained-0"))
    await bus.publish(job_requested("drained-1"))

    async def both_inside() -> bool:
        return len(gate.inside) == 2

    await eventually(both_inside, timeout=30)
    await stop(first)  # the handlers outlive the grace period: cancelled and handed back at once
    assert gate.calls == Counter({"drained-0": 1, "drained-1": 1})

    gate.released.set()
    second = await replica(nats_url, gate, Delivery(concurrency=2), "research:second")
    try:
        await bus.acked(2, "research", timeout=10)  # well within the 30 s ack wait: NAKed, not abandoned
    finally:
        await stop(second)
    assert gate.calls == Counter({"drained-0": 2, "drained-1": 2})


async def test_lag_and_slots_are_exported_by_durable(nc, nats_url):
    gate = Gate()
    one = await replica(nats_url, gate, Delivery(concurrency=2, lag_interval=0.1))
    try:
        bus = TestBus(nc)
        for n in range(5):
            await bus.publish(job_requested(f"lag-{n}"))

        def sample(name: str) -> float | None:
            return REGISTRY.get_sample_value(name, {"durable": "research"})

        async def reported() -> bool:
            return sample("pressroom_consumer_pending") == 3 and sample("pressroom_consumer_ack_pending") == 2

        await eventually(reported, timeout=30)
        assert sample("pressroom_consumer_slots_in_use") == 2 and sample("pressroom_consumer_slots") == 2
        gate.released.set()
        await bus.acked(5, "research")
    finally:
        await stop(one)


async def test_stop_ends_the_lag_watch_even_when_nats_swallows_its_cancellation(nc, nats_url, monkeypatch):
    """nats-py's publish path catches CancelledError (Client._flush_pending): a lag request cancelled
    there carries on as if nothing happened. stop() must still end (it once hung the suite for 300 s)."""
    asking = asyncio.Event()

    async def swallowing_consumer_info(self, stream, consumer, timeout=None):
        asking.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            pass  # what nats-py does
        raise nats.errors.TimeoutError

    one = await replica(nats_url, Gate(), Delivery(concurrency=1, lag_interval=0.05))
    monkeypatch.setattr(nats.js.JetStreamContext, "consumer_info", swallowing_consumer_info)
    await asyncio.wait_for(asking.wait(), timeout=10)
    stopping = asyncio.create_task(stop(one))
    done, _ = await asyncio.wait({stopping}, timeout=10)
    assert stopping in done, "stop() is still waiting for the lag watch"
