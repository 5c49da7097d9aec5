"""The fan-out: one feed (one NATS consumer) per watched job per gateway process, the text so far for a
watcher that arrives mid-blog (from the LIVE stream, on any replica), and liveness by protocol pings."""

from __future__ import annotations

import asyncio
import base64
import os
import time

from pressroom_contracts import subjects

from .conftest import Gateway


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
