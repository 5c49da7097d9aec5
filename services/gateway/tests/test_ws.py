"""`/v1/ws` over a real WebSocket against a real nats-server."""

from __future__ import annotations

import asyncio
import json
import socket

from pressroom_contracts import subjects
from pressroom_contracts.events import BlogCompletedEvent, JobRequestedEvent, parse_event
from pressroom_contracts.ids import new_job_id
from pressroom_contracts.jobs import JobRequest

from .conftest import persistence_answering


def types(frames: list[dict]) -> list[str]:
    return [f["event"]["type"] for f in frames]


def seqs(frames: list[dict]) -> list[int]:
    return [f["seq"] for f in frames]


async def test_ping_pong_echoes_ref(gateway, ws_connect):
    async with ws_connect(gateway) as client:
        await client.send({"type": "ping", "ref": "p1"})
        assert await client.recv() == {"type": "pong", "ref": "p1"}
        await client.send({"type": "ping"})
        assert await client.recv() == {"type": "pong", "ref": None}


async def test_start_publishes_job_requested_and_streams_it(gateway, ws_connect, pipeline):
    request = {"topic": "Solar power for homes", "research": True, "platforms": ["linkedin", "x"]}
    async with ws_connect(gateway) as client:
        await client.send({"type": "start", "request": request, "ref": "c1"})
        accepted = await client.expect("accepted")
        assert accepted["ref"] == "c1"
        job_id = accepted["job_id"]

        # The connection is subscribed to its job: the first event is the one it just published.
        first = await client.expect("event")
        assert first["job_id"] == job_id
        assert first["event"]["type"] == "job.requested"
        assert first["event"]["data"]["request"]["topic"] == "Solar power for homes"
        assert first["event"]["producer"]["service"] == "gateway"

    # It is on the stream, with its de-duplication key as Nats-Msg-Id.
    stored = await pipeline.nc.jetstream().get_msg(
        subjects.STREAM, subject=subjects.content(job_id, "job.requested")
    )
    assert stored.seq == first["seq"]
    assert stored.headers["Nats-Msg-Id"] == f"{job_id}:job.requested:1"
    event = parse_event(stored.data)
    assert isinstance(event, JobRequestedEvent)
    assert event.data.request == JobRequest.model_validate(request)
    assert event.data.owner == gateway.client_id


async def test_events_arrive_in_stream_order_with_their_seq(gateway, ws_connect, pipeline):
    job, first_seq = await pipeline.new_job()
    async with ws_connect(gateway) as client:
        await client.send({"type": "subscribe", "job_id": job.job_id})
        script = [
            job.progress(1, "Searching the knowledge base"),
            job.research(sources=2),
            job.progress(1, "Writing the post", stage="blog"),
            job.usage(),
            job.blog(),
            job.social("linkedin"),
            job.social("x"),
            job.image(),
            job.job_completed(),
        ]
        published = [await pipeline.publish(event) for event in script]

        frames = await client.events(1 + len(script))
        assert seqs(frames) == [first_seq, *published]
        assert types(frames) == ["job.requested", *[e.type for e in script]]
        assert all(f["job_id"] == job.job_id for f in frames)
        # The envelope arrives as stored, as a JSON object.
        stored_blog = parse_event(json.dumps(frames[5]["event"]))
        assert isinstance(stored_blog, BlogCompletedEvent) and stored_blog.data.title == "A title"
        await client.quiet()


async def test_deltas_are_forwarded_with_their_stage(gateway, ws_connect, pipeline):
    async with ws_connect(gateway) as client:
        await client.send({"type": "start", "request": {"topic": "Typing effects"}, "ref": "s"})
        job_id = (await client.expect("accepted"))["job_id"]
        await client.expect("event")

        await pipeline.delta(job_id, "blog", 0, "Hello, ")
        # Not a delta: skipped, the connection carries on.
        await pipeline.nc.publish(subjects.live(job_id, "blog"), b"not json")
        await pipeline.delta(job_id, "blog", 7, "world")
        await pipeline.delta(job_id, "social", 0, "Post")

        assert await client.recv() == {
            "type": "delta",
            "job_id": job_id,
            "stage": "blog",
            "offset": 0,
            "text": "Hello, ",
        }
        assert await client.recv() == {
            "type": "delta",
            "job_id": job_id,
            "stage": "blog",
            "offset": 7,
            "text": "world",
        }
        assert await client.recv() == {
            "type": "delta",
            "job_id": job_id,
            "stage": "social",
            "offset": 0,
            "text": "Post",
        }
        await client.quiet()


async def test_resume_after_a_dropped_connection_gets_exactly_the_missed_events(
    gateway, ws_connect, pipeline
):
    async with ws_connect(gateway) as first:
        await first.send({"type": "start", "request": {"topic": "Resuming streams"}})
        job_id = (await first.expect("accepted"))["job_id"]
        job = pipeline.job(job_id)
        await first.expect("event")
        await pipeline.publish(job.research())
        await pipeline.publish(job.progress(1, "Drafting", stage="blog"))
        seen = await first.events(2)
        last_seen = seen[-1]["seq"]
    # The connection dropped; the job goes on without it.
    missed = [
        await pipeline.publish(job.blog()),
        await pipeline.publish(job.social("linkedin")),
        await pipeline.publish(job.social("x")),
    ]

    async with ws_connect(gateway) as second:
        await second.send({"type": "subscribe", "job_id": job_id, "after_seq": last_seen})
        replay = await second.events(3)
        assert seqs(replay) == missed
        assert types(replay) == ["blog.completed", "social.completed", "social.completed"]

        # Then live ones, once each.
        live = await pipeline.publish(job.image())
        assert seqs(await second.events(1)) == [live]
        await second.quiet()


async def test_resubscribing_never_sends_an_event_twice(gateway, ws_connect, pipeline):
    job, first_seq = await pipeline.new_job()
    research_seq = await pipeline.publish(job.research())
    async with ws_connect(gateway) as client:
        await client.send({"type": "subscribe", "job_id": job.job_id, "after_seq": 0})
        assert seqs(await client.events(2)) == [first_seq, research_seq]

        # Again on the live subscription, asking for everything: nothing is resent.
        await client.send({"type": "subscribe", "job_id": job.job_id, "after_seq": 0})
        await client.quiet()

        # After an unsubscribe too, including what was published meanwhile: only what is new.
        await client.send({"type": "unsubscribe", "job_id": job.job_id})
        await client.barrier()
        blog_seq = await pipeline.publish(job.blog())
        await client.send({"type": "subscribe", "job_id": job.job_id, "after_seq": 0})
        assert seqs(await client.events(1)) == [blog_seq]
        await client.quiet()


async def test_unsubscribe_stops_events_and_deltas(gateway, ws_connect, pipeline):
    job, first_seq = await pipeline.new_job()
    async with ws_connect(gateway) as client:
        await client.send({"type": "subscribe", "job_id": job.job_id})
        assert seqs(await client.events(1)) == [first_seq]
        await client.send({"type": "unsubscribe", "job_id": job.job_id, "ref": "u"})
        await client.barrier()

        await pipeline.publish(job.research())
        await pipeline.delta(job.job_id, "blog", 0, "nobody listens")
        await client.quiet(0.5)


async def test_two_clients_watching_one_job_both_see_everything(gateway, ws_connect, pipeline):
    async with ws_connect(gateway) as alice, ws_connect(gateway) as bob:
        await alice.send({"type": "start", "request": {"topic": "Shared watching"}})
        job_id = (await alice.expect("accepted"))["job_id"]
        job = pipeline.job(job_id)
        assert (await alice.expect("event"))["event"]["type"] == "job.requested"
        await bob.send({"type": "subscribe", "job_id": job_id})
        assert (await bob.expect("event"))["event"]["type"] == "job.requested"  # the replay, at once
        await bob.barrier()  # subscribed

        published = [await pipeline.publish(job.research())]
        await pipeline.delta(job_id, "blog", 0, "Once upon")
        published += [
            await pipeline.publish(e) for e in (job.blog(), job.social("linkedin"), job.job_completed())
        ]

        for client in (alice, bob):
            frames = [await client.recv() for _ in range(len(published) + 1)]
            events = [f for f in frames if f["type"] == "event"]
            deltas = [f for f in frames if f["type"] == "delta"]
            assert seqs(events) == published
            assert [d["text"] for d in deltas] == ["Once upon"]
            await client.quiet(0.1)
    # One feed served both: the gateway's NATS work follows the jobs, not the watchers.


async def test_protocol_errors_are_answered_and_the_connection_stays_usable(gateway, ws_connect):
    async with ws_connect(gateway) as client:
        await client.send("{not json")
        error = await client.expect("error")
        assert (error["code"], error["ref"]) == ("invalid_json", None)

        await client.send({"type": "publish", "ref": "u1"})
        error = await client.expect("error")
        assert (error["code"], error["ref"]) == ("unknown_type", "u1")

        await client.send({"type": "ping", "ref": "big", "pad": "x" * 70_000})
        error = await client.expect("error")
        assert (error["code"], error["ref"]) == ("frame_too_large", None)

        bad_start = {"topic": "Social media", "platforms": ["linkedin", "x", "myspace"]}
        await client.send({"type": "start", "request": bad_start, "ref": "c1"})
        error = await client.expect("error")
        assert (error["code"], error["ref"]) == ("invalid_request", "c1")
        assert error["message"].startswith("platforms[2]"), error["message"]

        # A malformed id names no job, as over REST.
        await client.send({"type": "subscribe", "job_id": "no.dots", "ref": "s1"})
        error = await client.expect("error")
        assert (error["code"], error["ref"], error["message"]) == ("not_found", "s1", "no job no.dots")
        await client.send({"type": "regenerate", "job_id": new_job_id(), "stage": "poem", "ref": "g1"})
        error = await client.expect("error")
        assert (error["code"], error["ref"]) == ("invalid_request", "g1")
        assert error["message"].startswith("stage: ")

        await client.send({"type": "cancel", "job_id": new_job_id(), "ref": "k1"})
        error = await client.expect("error")
        assert (error["code"], error["ref"]) == ("not_found", "k1")

        # Authenticated already: the same token again is accepted silently, another one refused.
        await client.send({"type": "auth", "token": gateway.token, "ref": "a0"})
        await client.send({"type": "auth", "token": "anything", "ref": "a1"})
        error = await client.expect("error")
        assert (error["code"], error["ref"]) == ("invalid_frame", "a1")

        # Binary frames are read like text ones.
        await client.send(json.dumps({"type": "ping", "ref": "bin"}).encode())
        assert await client.recv() == {"type": "pong", "ref": "bin"}
        await client.barrier()


async def test_unknown_job_answers_not_found(gateway, ws_connect):
    async with ws_connect(gateway) as client:
        await client.send({"type": "subscribe", "job_id": new_job_id(), "after_seq": 3, "ref": "s"})
        error = await client.expect("error")
        assert (error["code"], error["ref"]) == ("not_found", "s")
        await client.quiet()


async def test_disconnect_releases_every_subscription(gateway, ws_connect, pipeline, eventually):
    js = pipeline.nc.jetstream()

    async def consumers() -> set[str]:
        return {info.name for info in await js.consumers_info(subjects.STREAM)}

    # Earlier tests' connections are gone.
    await eventually(lambda: gateway.feed_subscriptions() == 0, timeout=10, interval=0.05)
    before = await consumers()
    jobs = [(await pipeline.new_job())[0] for _ in range(3)]
    async with ws_connect(gateway) as client:
        for job in jobs:
            await client.send({"type": "subscribe", "job_id": job.job_id})
        await client.events(3)
        # Per job: the ordered consumer's delivery subscription and the live deltas.
        assert gateway.feed_subscriptions() == 6
        ours = await consumers() - before
        assert len(ours) == 3

    await eventually(lambda: gateway.feed_subscriptions() == 0, timeout=10, interval=0.05)
    await eventually(lambda: _none_left(consumers(), ours), timeout=10, interval=0.05)


async def test_a_client_that_does_not_read_is_closed_as_too_slow(
    gateway_factory, ws_connect, pipeline, eventually
):
    job, _ = await pipeline.new_job()
    # Pings off (for this test): a client that never reads would also be dropped for not answering them.
    async with gateway_factory(send_queue=4, ping_interval=3600) as small:
        # A small, fixed receive buffer (the kernel would otherwise autotune it to tens of MB), a client
        # that stops reading from its socket after one queued message, and no compression (the
        # repetitive deltas would otherwise shrink to nothing on the wire).
        sock = socket.create_connection((small.settings.host, small.settings.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        sock.setblocking(False)
        async with (
            ws_connect(small, max_queue=1, sock=sock, compression=None) as client,
            ws_connect(small, compression=None, max_size=None, ping_interval=None) as fast,
        ):
            # A watcher of the same job that keeps reading is not slowed down or dropped with it.
            await fast.send({"type": "subscribe", "job_id": job.job_id})
            await fast.expect("event")
            received = asyncio.create_task(_count_deltas(fast, 300))
            await _too_slow(client, job, pipeline)
            assert await asyncio.wait_for(received, 30) == 300
            await fast.barrier()
        # The gateway freed the connection's subscriptions (once the feed's linger is over).
        await eventually(lambda: small.feed_subscriptions() == 0, timeout=10, interval=0.05)


async def _count_deltas(client, wanted: int) -> int:
    seen = 0
    while seen < wanted:
        if (await client.recv(timeout=30))["type"] == "delta":
            seen += 1
    return seen


async def _too_slow(client, job, pipeline) -> None:
    await client.send({"type": "subscribe", "job_id": job.job_id})
    await client.expect("event")
    await client.barrier()
    # ~18 MB of deltas: more than the socket buffers and the 4-frame outbox hold.
    chunk = "x" * 60_000
    for i in range(300):
        await pipeline.publisher.delta(job.job_id, "blog", i * len(chunk), chunk)
    await pipeline.sync()
    await asyncio.sleep(2)  # the outbox stays full past its grace period
    closed = await client.closed(timeout=20)
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (1013, "client too slow")


async def test_history_expired_before_after_seq_gets_a_resync(isolated_stack, ws_connect):
    async with isolated_stack.run() as (gateway, pipeline):
        js = pipeline.nc.jetstream()
        job, requested_seq = await pipeline.new_job()
        research_seq = await pipeline.publish(job.research())
        kept = [
            await pipeline.publish(job.progress(1, "Drafting", stage="blog")),
            await pipeline.publish(job.blog()),
        ]
        # Age out everything before the progress event: the client saw only job.requested.
        await js.purge_stream(subjects.STREAM, seq=kept[0])
        assert research_seq < kept[0]

        # The job's owner is now known only to persistence.
        async with (
            persistence_answering(pipeline.nc, {job.job_id: gateway.client_id}),
            ws_connect(gateway) as client,
        ):
            await client.send({"type": "subscribe", "job_id": job.job_id, "after_seq": requested_seq})
            resync = await client.expect("resync")
            assert resync["job_id"] == job.job_id
            assert resync["seq"] == kept[-1]
            assert [e["type"] for e in resync["state"]["events"]] == ["stage.progress", "blog.completed"]
            # Then live events, after the snapshot.
            live = await pipeline.publish(job.social("x"))
            assert seqs(await client.events(1)) == [live]
            await client.quiet()

        # A job that started after the expired range replays normally, from any position.
        fresh, fresh_seq = await pipeline.new_job()
        async with ws_connect(gateway) as client:
            await client.send({"type": "subscribe", "job_id": fresh.job_id, "after_seq": 0})
            assert seqs(await client.events(1)) == [fresh_seq]
            await client.quiet()


async def _none_left(current, ours: set[str]) -> bool:
    return not (await current) & ours


async def test_cancel_puts_a_cancel_request_on_the_job(gateway, ws_connect, pipeline):
    async with ws_connect(gateway) as client:
        await client.send({"type": "start", "request": {"topic": "Cancel me please"}, "ref": "s1"})
        job_id = (await client.expect("accepted"))["job_id"]
        assert (await client.expect("event"))["event"]["type"] == "job.requested"
        await client.send({"type": "cancel", "job_id": job_id, "ref": "k1"})
        frames = [await client.recv() for _ in range(2)]  # the acknowledgement and the request's own event
        assert {"type": "accepted", "job_id": job_id, "ref": "k1"} in frames
        assert any(f["type"] == "event" and f["event"]["type"] == "cancel.requested" for f in frames)
        events = await pipeline.nc.jetstream().subscribe(
            f"content.{job_id}.cancel.requested", ordered_consumer=True
        )
        request = json.loads((await events.next_msg(timeout=5)).data)
        assert request["type"] == "cancel.requested" and request["producer"]["service"] == "gateway"
