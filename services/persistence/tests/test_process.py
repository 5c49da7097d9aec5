"""`python -m pressroom_persistence` as a real process: health, queries, a kill and a restart."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pressroom_contracts import subjects
from pressroom_devstack.env import without_contract
from pressroom_testkit.runner import ServiceRunner


@pytest.fixture
def runner(provisioned: str, database_url: str, tmp_path: Path) -> Iterator[ServiceRunner]:
    env = {**without_contract(os.environ), "NATS_URL": provisioned, "DATABASE_URL": database_url}
    runner = ServiceRunner(env, tmp_path / "logs", startup_timeout=60)
    try:
        yield runner
    finally:
        runner.stop()


async def test_process_serves_and_survives_a_kill(runner, bus, events, eventually) -> None:
    await asyncio.to_thread(runner.start, "persistence")
    async with httpx.AsyncClient() as http:
        assert (await http.get(runner.replica("persistence").health_url, timeout=5)).is_success

    *before, last = events.full_run()
    for event in before:
        await bus.publish(event)

    async def running() -> bool:
        reply = await bus.ask(subjects.QUERY_JOB, {"job_id": events.job_id})
        return "job" in reply and len(reply["social"]) == 2

    await eventually(running)
    await asyncio.to_thread(runner.kill, "persistence")
    await bus.publish(last)  # arrives while nobody records
    await asyncio.to_thread(runner.restart, "persistence")
    await eventually(lambda: bus.stored_count(events.job_id, "job.completed"), timeout=30)
    reply = await bus.ask(subjects.QUERY_JOB, {"job_id": events.job_id})
    assert reply["job"]["status"] == "completed"
    assert await bus.stored_count(events.job_id, "job.completed") == 1
