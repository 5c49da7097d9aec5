"""A service's Publisher and StageContext refuse event types it has not declared in
pressroom_contracts.parties; nothing undeclared reaches the stream."""

from __future__ import annotations

import nats
import pytest

from pressroom_contracts.events import ImageCompletedEvent, Producer, ResearchCompletedEvent, Stage
from pressroom_contracts.jobs import JobRequest
from pressroom_contracts.parties import UndeclaredEvent
from pressroom_devstack.provisioning import reset_nats
from pressroom_runtime.broker import Publisher, make_broker
from pressroom_runtime.consumer import StageContext
from pressroom_runtime.history import recorded
from pressroom_testkit import JobEvents


@pytest.fixture
async def broker(nats_url):
    reset_nats(nats_url)
    broker = make_broker(nats_url, "test:declared")
    await broker.connect()
    try:
        yield broker
    finally:
        await broker.stop()


async def test_a_service_cannot_publish_what_it_has_not_declared(broker, nats_url):
    job = JobEvents.new(JobRequest(topic="declared producers"))
    social = Publisher(broker, service="social")
    with pytest.raises(UndeclaredEvent, match=r"social publishes 'blog\.completed'"):
        await social.publish(job.blog())
    with pytest.raises(UndeclaredEvent, match="streams live 'blog'"):
        await social.delta(job.job_id, "blog", 0, "text")

    nc = await nats.connect(nats_url)
    try:
        assert await recorded(nc, job.job_id, "blog.completed") == []
        seq = await Publisher(broker, service="writer").publish(job.blog())
        stored = await recorded(nc, job.job_id, "blog.completed")
    finally:
        await nc.close()
    assert seq > 0
    assert [e.type for e in stored] == ["blog.completed"]


async def test_a_stage_cannot_read_back_what_it_has_not_declared(broker):
    job = JobEvents.new(JobRequest(topic="declared readers"))
    ctx = StageContext(
        Publisher(broker, service="research"),
        Producer(service="research", replica="research-test"),
        Stage.research,
        job.job_id,
        None,
        1,
    )
    assert await ctx.recorded(ResearchCompletedEvent) == []  # declared: read, nothing there yet
    with pytest.raises(UndeclaredEvent, match=r"research reads 'image\.completed'"):
        await ctx.recorded(ImageCompletedEvent)


def test_an_unknown_service_is_refused_at_construction(broker):
    with pytest.raises(UndeclaredEvent, match="not a declared service"):
        Publisher(broker, service="typo")
