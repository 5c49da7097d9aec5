"""The shared test helpers: eventually() polls plain and async checks; TestBus stores, counts and reads
back events on a real nats-server."""

from __future__ import annotations

import nats
import pytest

from pressroom_contracts.jobs import JobRequest
from pressroom_devstack.provisioning import reset_nats
from pressroom_testkit import JobEvents, TestBus, eventually


async def test_eventually_returns_the_first_truthy_value_of_plain_and_async_checks() -> None:
    calls = []

    def plain() -> int:
        calls.append(1)
        return len(calls) if len(calls) >= 3 else 0

    async def awaited() -> str:
        return "ready"

    assert await eventually(plain, timeout=2, interval=0.01) == 3
    assert await eventually(awaited, timeout=2) == "ready"


async def test_eventually_fails_with_the_last_value() -> None:
    with pytest.raises(AssertionError, match=r"within 0.1s: \[\]"):
        await eventually(lambda: [], timeout=0.1, interval=0.02)


async def test_bus_stores_counts_and_reads_back(nats_url: str) -> None:
    reset_nats(nats_url)

    nc = await nats.connect(nats_url)
    try:
        bus = TestBus(nc)
        job = JobEvents.new(JobRequest(topic="Shared helpers"))
        requested = job.requested()
        first = await bus.publish(requested)
        assert await bus.publish(requested) == first  # deduplicated: the same message
        await bus.publish(requested, dedup=False)
        assert await bus.stored_count(job.job_id, "job.requested") == 2
        stored = await bus.wait_for(job.job_id, "job.requested", count=2, timeout=5)
        assert [e.id for e in stored] == [requested.id] * 2
        assert (await bus.first(job.job_id, "research.completed", "job.requested", timeout=5)).type == (
            "job.requested"
        )
        with pytest.raises(TypeError):
            await bus.settled()
    finally:
        await nc.drain()
