"""The fan-out: one feed (one NATS consumer) per watched job per gateway process, the text so far for a
watcher that arrives mid-blog (from the LIVE stream, on any replica), liveness by protocol pings, and a
feed that waits for the bus when it answers "not now" instead of failing its watcher."""

from __future__ import annotations

import asyncio
import base64
import os
import time

import nats.errors
import pytest
from prometheus_client import REGISTRY

from pressroom_contracts import subjects
from pressroom_devstack.nats import NatsCluster
from pressroom_devstack.natsauth import NatsUsers
from pressroom_runtime.provisioning import provision

from .conftest import Gateway, Pipeline, WsClient, new_key, pipeline_on, running_gateway


async def _consumers(pipeline) -> set[str]:
    return {info.name for info in await pipeline.nc.jetstream().consumers_info(subjects.STREAM)}


async def test_many_watchers_of_few_jobs_cost_one_consumer_per_job(gateway, ws_connect, pipeline, eventually):
    await eventually(lambda: not gateway.app.state.services.hub.feeds, timeout=10, interval=0.05)
    before = await _consumers(pipeline)
    jobs = [(await pipeline.new_job())[0] for _ in range(2)]
    clients = [ws_connect(gateway) for _ in range(6)]
    opened = [await c.__aenter__() for c in clients]
    try:
        for i, client in enumerate(opened):
            await client.send({"type": "subscribe", "job_id": jobs[i % 2].job_id})
            await client.expect("event")
        assert len(await _consumers(pipeline) - before) == 2
        assert set(gateway.app.state.services.hub.feeds) == {job.job_id for job in jobs}
        research = [await pipeline.publish(job.research()) for job in jobs]
        for i, client in enumerate(opened):
            frame = await client.expect("event")
            assert frame["seq"] == research[i % 2]
    finally:
        for c in clients:
            await c.__aexit__(None, None, None)
    await eventually(lambda: not gateway.app.state.services.hub.feeds, timeout=10, interval=0.05)


async def _captured(pipeline, job_id: str, offset: int, eventually) -> None:
    """Waits until the LIVE stream holds the job's delta at `offset`."""
    js = pipeline.nc.jetstream()

    async def stored() -> bool:
        msg = await js.get_last_msg(subjects.LIVE_STREAM, subjects.live(job_id, "blog"))
        return f'"offset":{offset},' in (msg.data or b"").decode()

    await eventually(stored, timeout=5, interval=0.02)


async def test_a_watcher_arriving_mid_blog_gets_the_text_so_far_on_another_replica(
    gateway, gateway_factory, ws_connect, pipeline, eventually
):
    job, requested_seq = await pipeline.new_job()
    async with ws_connect(gateway) as first:
        await first.send({"type": "subscribe", "job_id": job.job_id})
        await first.expect("event")
        await first.barrier()
        for offset, piece in ((0, "Once "), (5, "upon "), (10, "a time")):
            await pipeline.delta(job.job_id, "blog", offset, piece)
        assert [(await first.expect("delta"))["text"] for _ in range(3)] == ["Once ", "upon ", "a time"]
    await _captured(pipeline, job.job_id, 10, eventually)

    # A reload, served by another gateway process: the events it has not seen, then the text so far.
    async with gateway_factory() as replica, ws_connect(replica) as again:
        await again.send({"type": "subscribe", "job_id": job.job_id, "after_seq": requested_seq})
        so_far = await again.expect("delta")
        assert (so_far["stage"], so_far["offset"], so_far["text"]) == ("blog", 0, "Once upon a time")
        await again.barrier()
        await pipeline.delta(job.job_id, "blog", 16, ", there was")
        live = await again.expect("delta")
        assert (live["offset"], live["text"]) == (16, ", there was")
        blog_seq = await pipeline.publish(job.blog())
        assert (await again.expect("event"))["seq"] == blog_seq

    # Once the blog is complete, a newcomer gets the events, and no text in progress.
    async with gateway_factory() as another, ws_connect(another) as late:
        await late.send({"type": "subscribe", "job_id": job.job_id})
        assert [f["event"]["type"] for f in await late.events(2)] == ["job.requested", "blog.completed"]
        await late.barrier()


async def test_a_regeneration_replaces_the_text_so_far(
    gateway, gateway_factory, ws_connect, pipeline, eventually
):
    job, _ = await pipeline.new_job()
    await pipeline.delta(job.job_id, "blog", 0, "First draft")
    await pipeline.publish(job.blog())
    await pipeline.delta(job.job_id, "blog", 0, "Second")
    await pipeline.delta(job.job_id, "blog", 6, " draft, going")
    await _captured(pipeline, job.job_id, 6, eventually)
    async with gateway_factory() as replica, ws_connect(replica) as client:
        await client.send({"type": "subscribe", "job_id": job.job_id})
        await client.events(2)
        assert (await client.expect("delta"))["text"] == "Second draft, going"


async def test_a_passive_watcher_stays_and_a_dead_one_is_detected(gateway_factory, ws_connect, pipeline):
    interval = 0.3
    async with gateway_factory(ping_interval=interval, ping_timeout=interval) as gw:
        job, _ = await pipeline.new_job()
        async with ws_connect(gw) as passive:
            await passive.send({"type": "subscribe", "job_id": job.job_id})
            await passive.expect("event")
            # Never sends another frame; its library answers the server's pings. Many intervals later
            # it is still there and is still sent the job's events.
            await asyncio.sleep(10 * interval)
            seq = await pipeline.publish(job.research())
            assert (await passive.expect("event"))["seq"] == seq

        # A client that completes the handshake and then never answers: closed after one unanswered ping.
        elapsed, received = await _silent_client(gw)
        assert received[:1] == b"\x89"  # the first frame the server sent is a ping
        assert elapsed < 2 * interval + 1.0, elapsed  # ping at one interval, closed one timeout later


async def _silent_client(gw: Gateway) -> tuple[float, bytes]:
    """Opens /v1/ws with a raw socket, then reads without ever answering; returns how long until the
    server dropped the connection, and the bytes it sent."""
    key = base64.b64encode(os.urandom(16)).decode()
    reader, writer = await asyncio.open_connection(gw.settings.host, gw.settings.port)
    writer.write(
        (
            f"GET /v1/ws HTTP/1.1\r\nHost: {gw.settings.host}:{gw.settings.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {gw.token}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    started = time.monotonic()
    received = b""
    try:
        async with asyncio.timeout(10):
            while chunk := await reader.read(4096):
                received += chunk
    except (OSError, ConnectionResetError):
        pass
    finally:
        writer.close()
    return time.monotonic() - started, received


def feed_start_retries() -> float:
    return REGISTRY.get_sample_value("pressroom_gateway_feed_start_retries_total") or 0.0


async def _watch_through(
    gw: Gateway, pipe: Pipeline, client: WsClient, interrupt, resume, eventually
) -> None:
    """A client starts a job and stops watching it; the bus is interrupted; the client subscribes again
    while it is: the gateway retries starting the job's feed, paced, and once the bus is back the client
    is served what follows, with no `unavailable` and nothing missed."""
    hub = gw.app.state.services.hub
    await client.send({"type": "start", "request": {"topic": "Through an interruption"}, "ref": "s"})
    job_id = (await client.expect("accepted"))["job_id"]
    requested = await client.expect("event")
    await client.send({"type": "unsubscribe", "job_id": job_id})
    await eventually(lambda: not hub.feeds, timeout=10, interval=0.05)

    await interrupt()
    retries = feed_start_retries()
    await client.send({"type": "subscribe", "job_id": job_id, "after_seq": requested["seq"]})
    await eventually(lambda: feed_start_retries() > retries, timeout=15, interval=0.05)
    await resume()

    seq = await pipe.publish(pipe.job(job_id).research())
    frame = await client.expect("event", timeout=60)
    assert (frame["seq"], frame["event"]["type"]) == (seq, "research.completed")


async def test_a_watch_begun_while_nats_is_away_waits_for_it(isolated_stack, ws_connect, eventually):
    async def kill() -> None:
        isolated_stack.nats.kill()

    async def restart() -> None:
        isolated_stack.nats.start()  # same port and store

    async with isolated_stack.run(feed_linger=0) as (gw, pipe), ws_connect(gw) as client:
        await _watch_through(gw, pipe, client, kill, restart, eventually)


@pytest.mark.slow
async def test_a_watch_begun_during_a_stream_leader_election_rides_through_it(
    tmp_path, ws_connect, eventually
):
    cluster = NatsCluster(tmp_path / "data", tmp_path / "logs", 3, users=NatsUsers.generate())
    cluster.start()
    try:
        url = cluster.admin_url
        await provision(url, replicas=3)
        key = await new_key(url)

        killed: list[str] = []

        async def leader() -> str | None:
            try:
                info = await pipe.nc.jetstream().stream_info(subjects.STREAM)
            except (nats.errors.Error, TimeoutError):
                return None  # no leader to answer yet
            return info.cluster.leader if info.cluster is not None else None

        async def kill_the_stream_leader() -> None:
            name = await leader()
            assert name is not None
            killed.append(name)
            cluster.kill(cluster.index_of(name))

        async def new_leader() -> None:  # elected by the two nodes left; the test's own publish needs it
            await eventually(lambda: _is_new(leader(), killed), timeout=60, interval=0.2)

        async with (
            running_gateway(url, key, feed_linger=0) as gw,
            pipeline_on(url, key.client_id) as pipe,
            ws_connect(gw) as client,
        ):
            await _watch_through(gw, pipe, client, kill_the_stream_leader, new_leader, eventually)
    finally:
        cluster.stop()


async def _is_new(leader, killed: list[str]) -> bool:
    name = await leader
    return name is not None and name not in killed
