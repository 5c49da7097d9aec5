"""Pressroom on a 3-node JetStream cluster: the node that leads the CONTENT stream is killed with kill -9
mid-load and brought back; every job completes, nothing is stored twice, and every WebSocket watcher
sees every event of its job without being told to try again."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest
import websockets

from pipeline import TERMINAL_TYPES, script_pipeline
from pressroom_contracts import subjects
from pressroom_devstack.config import sample_knowledge_dir
from pressroom_devstack.env import LLMEndpoint, service_env, without_contract
from pressroom_devstack.nats import NatsCluster
from pressroom_devstack.natsauth import NatsUsers
from pressroom_devstack.objectstore import S3Info
from pressroom_devstack.provisioning import reset_nats
from pressroom_runtime.broker import nats_servers
from pressroom_runtime.history import recorded
from pressroom_testkit.runner import ServiceRunner

JOBS = 8
REQUEST = {"topic": "Community solar gardens", "platforms": ["linkedin", "x"], "image": True}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    root = tmp_path_factory.mktemp("nats-cluster")
    nodes = NatsCluster(root / "data", root / "logs", 3, users=NatsUsers.generate())
    nodes.start()
    try:
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
def runner(cluster: NatsCluster, database_url: str, s3: S3Info, scripted_llm: Any, tmp_path: Path):
    env = service_env(
        without_contract(os.environ),
        nats_url=cluster.url,  # every node: the services fail over on their own
        database_url=database_url,
        s3=s3,
        llm=LLMEndpoint(
            base_url=scripted_llm.base_url, api_key="test", model=scripted_llm.model, profile="chat"
        ),
        knowledge_dir=sample_knowledge_dir(),
        gateway_host="127.0.0.1",
    )
    reset_nats(cluster.admin_url, replicas=3)
    services = ServiceRunner(
        env, tmp_path / "logs", admin_url=cluster.admin_url, nats_users=cluster.users, stream_replicas=3
    )
    try:
        yield services
    finally:
        services.stop()


async def stream_leader(cluster: NatsCluster) -> int:
    nc = await nats.connect(nats_servers(cluster.admin_url), max_reconnect_attempts=2)
    try:
        info = await nc.jetstream().stream_info(subjects.STREAM)
    finally:
        await nc.close()
    assert info.config.num_replicas == 3 and info.cluster is not None and info.cluster.leader
    return cluster.index_of(info.cluster.leader)


async def watch_job(url: str, started: asyncio.Event) -> tuple[str, list[dict[str, Any]]]:
    """Starts a job and collects its events, reconnecting (and resuming after the last seq) if dropped."""
    job_id, events, last_seq = "", [], 0
    async with asyncio.timeout(240):
        while True:
            try:
                async with websockets.connect(url) as ws:
                    if not job_id:
                        await ws.send(json.dumps({"type": "start", "request": REQUEST, "ref": "s"}))
                    else:
                        await ws.send(
                            json.dumps({"type": "subscribe", "job_id": job_id, "after_seq": last_seq})
                        )
                    while True:
                        frame = json.loads(await ws.recv())
                        # No `unavailable` either: the gateway retries a job's feed through the election.
                        assert frame["type"] not in ("error", "resync"), frame
                        if frame["type"] == "accepted":
                            job_id = frame["job_id"]
                            started.set()
                        if frame["type"] == "event":
                            last_seq = frame["seq"]
                            events.append(frame["event"])
                            if frame["event"]["type"] in TERMINAL_TYPES:
                                return job_id, events
            except (OSError, websockets.ConnectionClosed):
                await asyncio.sleep(0.5)


async def test_jobs_survive_the_stream_leader_killed_mid_load(cluster, runner, scripted_llm, database_url):
    script_pipeline(scripted_llm)
    runner.start()
    url = f"{(runner.gateway_url or '').replace('http', 'ws', 1)}/v1/ws?token={runner.api_token}"

    started = [asyncio.Event() for _ in range(JOBS)]
    watchers = [asyncio.create_task(watch_job(url, event)) for event in started]
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in started)), 60)

    leader = await stream_leader(cluster)
    assert not all(w.done() for w in watchers), "the load ended before the kill"
    cluster.kill(leader)  # kill -9 while the jobs are in flight
    # A new leader is elected among the two that are left.
    async with asyncio.timeout(30):
        while (new_leader := await _leader_or_none(cluster)) in (None, leader):  # noqa: ASYNC110 - polling the cluster
            await asyncio.sleep(0.2)
    cluster.start_node(leader)

    results = await asyncio.gather(*watchers)
    assert [events[-1]["type"] for _, events in results] == ["job.completed"] * JOBS
    assert new_leader != leader

    admin = await nats.connect(nats_servers(cluster.admin_url))
    connection = await asyncpg.connect(database_url)
    try:
        for job_id, events in results:
            stored = []
            for event_type in ("job.requested", "research.completed", "blog.completed", "social.completed",
                               "image.completed", "job.completed"):  # fmt: skip
                stored += await recorded(admin, job_id, event_type)
            # Every stored result is there once, and the watcher saw each of them.
            assert sorted(e.type for e in stored) == sorted(
                ["job.requested", "research.completed", "blog.completed", "social.completed",
                 "social.completed", "image.completed", "job.completed"]
            )  # fmt: skip
            assert {e.id for e in stored} <= {e["id"] for e in events}
            assert len({e["id"] for e in events}) == len(events), "a watcher saw an event twice"
            counts = await connection.fetchrow(
                "SELECT (SELECT count(*) FROM blog_posts WHERE job_id = $1) AS blogs,"
                " (SELECT count(*) FROM social_posts WHERE job_id = $1) AS posts,"
                " (SELECT count(*) FROM images WHERE job_id = $1) AS images,"
                " (SELECT status FROM jobs WHERE id = $1) AS status",
                job_id,
            )
            assert dict(counts) == {"blogs": 1, "posts": 2, "images": 1, "status": "completed"}
    finally:
        await connection.close()
        await admin.close()


async def _leader_or_none(cluster: NatsCluster) -> int | None:
    try:
        return await stream_leader(cluster)
    except (AssertionError, nats.errors.Error, TimeoutError):
        return None
