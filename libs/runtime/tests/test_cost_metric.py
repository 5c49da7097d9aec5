"""pressroom_cost_usd_total: the dashboard's cost per hour, counted once per stored usage.recorded event."""

from __future__ import annotations

from prometheus_client import REGISTRY

from pressroom_contracts.jobs import JobRequest
from pressroom_devstack.provisioning import reset_nats
from pressroom_runtime.broker import Publisher, make_broker
from pressroom_testkit import JobEvents


def cost(stage: str) -> float:
    return REGISTRY.get_sample_value("pressroom_cost_usd_total", {"stage": stage}) or 0.0


async def test_cost_is_counted_once_per_stored_event(nats_url: str) -> None:
    reset_nats(nats_url)
    broker = make_broker(nats_url, "writer:cost-test")
    await broker.connect()
    try:
        publisher = Publisher(broker)
        events = JobEvents.new(JobRequest(topic="what it cost"))
        before = cost("blog")
        usage = events.usage(call="draft", cost=0.25)
        first = await publisher.publish(usage)
        assert await publisher.publish(usage) == first, "the stream dropped the duplicate"
        await publisher.publish(events.usage(call="continue", cost=0.5))
        assert cost("blog") - before == 0.75
    finally:
        await broker.stop()
