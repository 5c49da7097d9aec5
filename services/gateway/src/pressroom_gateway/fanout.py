"""Per-connection feeds of one job: its stored events (replay, then live) and its live text deltas.

A `JobFeed` turns NATS messages into protocol frames and hands them to an async `emit` callback; it knows
nothing about WebSockets or FastAPI, so the `/v1/ws` endpoint, `/content` and later SSE can share it.

Stored events come from a JetStream ordered consumer filtered on `content.<job>.>`: the server replays the
job's history from a start sequence and then keeps delivering new events, with no gap between the two and
in stream order. Live deltas come from a plain core-NATS subscription on `live.<job>.>`: not stored, so
there is nothing to replay.

Each feed remembers the highest stream sequence it has emitted (its mark) and drops anything at or below
it, so an ordered-consumer reset or a re-subscribe never sends an event twice; `FeedSet` keeps the mark of
an unsubscribed job for the rest of the connection for the same reason.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from pressroom_contracts import subjects
from pressroom_contracts.protocol import DeltaFrame, DeltaMessage, EventFrame, Frame, ResyncFrame
from pressroom_runtime.logs import get_logger

from .stream import EventStore

log = get_logger(__name__)

Emit = Callable[[Frame], Awaitable[object]]

FIRST_EVENT_TYPE = "job.requested"
# A resync snapshot is sent in one frame; a job never legitimately has this many events.
MAX_SNAPSHOT_EVENTS = 1000
CLEANUP_TIMEOUT = 2.0


def decode_event(data: bytes) -> dict[str, Any] | None:
    """The stored envelope as a JSON object, or None if the stream holds something else."""
    try:
        value = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


class JobFeed:
    def __init__(
        self, nc: Client, events: EventStore, job_id: str, emit: Emit, *, mark: int = 0, deltas: bool = True
    ) -> None:
        subjects.content_of_job(job_id)  # refuse a job id that is not a subject token before anything else
        self.job_id = job_id
        self.mark = mark
        self._nc = nc
        self._events = events
        self._js: JetStreamContext = nc.jetstream()
        self._emit = emit
        self._want_deltas = deltas
        self._stored: JetStreamContext.PushSubscription | None = None
        self._live: Subscription | None = None
        self._stopped = False

    def skip_to(self, seq: int) -> None:
        """The client already has everything up to `seq`: never send it."""
        self.mark = max(self.mark, seq)

    async def start(self, after_seq: int = 0) -> None:
        self.skip_to(after_seq)
        if self._want_deltas:
            # Before the replay, so no delta produced while we catch up is missed.
            self._live = await self._nc.subscribe(subjects.live_of_job(self.job_id), cb=self._on_delta)
        start_after = self.mark
        if not await self._history_covers(start_after):
            start_after = await self._resync()
        self._stored = await self._subscribe_stored(start_after)

    async def stop(self) -> None:
        """Idempotent; safe after a partial start. Unsubscribes and deletes the ephemeral consumer so the
        server does not keep it until its inactivity threshold."""
        if self._stopped:
            return
        self._stopped = True
        stored, live = self._stored, self._live
        self._stored = self._live = None
        for sub in (live, stored):
            if sub is not None:
                try:
                    await sub.unsubscribe()
                except Exception as exc:  # closed connection, already unsubscribed: nothing left to free
                    log.debug("unsubscribe failed", job_id=self.job_id, error=str(exc))
        consumer = getattr(stored, "_consumer", None)  # nats-py keeps it current across ordered resets
        if consumer and self._nc.is_connected:
            try:
                async with asyncio.timeout(CLEANUP_TIMEOUT):
                    await self._js.delete_consumer(subjects.STREAM, consumer)
            except Exception as exc:  # the server drops an ephemeral consumer without interest anyway
                log.debug("consumer delete failed", job_id=self.job_id, consumer=consumer, error=str(exc))

    # ---- stored events ----------------------------------------------------------------------------------

    async def _subscribe_stored(self, start_after: int) -> JetStreamContext.PushSubscription:
        if start_after == 0:
            policy, config = DeliverPolicy.ALL, ConsumerConfig()
        else:
            policy, config = DeliverPolicy.BY_START_SEQUENCE, ConsumerConfig(opt_start_seq=start_after + 1)
        return await self._js.subscribe(
            subjects.content_of_job(self.job_id),
            stream=subjects.STREAM,  # skips a stream lookup per subscription
            cb=self._on_stored,
            ordered_consumer=True,
            deliver_policy=policy,
            config=config,
        )

    async def _on_stored(self, msg: Msg) -> None:
        seq = msg.metadata.sequence.stream
        if self._stopped or seq <= self.mark:
            return
        self.mark = seq
        event = decode_event(msg.data)
        if event is None:
            log.warning("skipping a stored message that is not an event", job_id=self.job_id, seq=seq)
            return
        await self._emit(EventFrame(job_id=self.job_id, seq=seq, event=event))

    # ---- live deltas ------------------------------------------------------------------------------------

    async def _on_delta(self, msg: Msg) -> None:
        if self._stopped:
            return
        try:
            _, stage = subjects.parse_live(msg.subject)
            delta = DeltaMessage.model_validate_json(msg.data)
        except (subjects.SubjectError, ValidationError) as exc:
            log.warning("skipping a malformed delta", subject=msg.subject, error=str(exc))
            return
        await self._emit(DeltaFrame(job_id=self.job_id, stage=stage, offset=delta.offset, text=delta.text))

    # ---- expired history --------------------------------------------------------------------------------

    async def _history_covers(self, after_seq: int) -> bool:
        """Whether the stream still holds every event of this job after `after_seq`.

        The stream discards from the front (age and size limits), so only messages below its first
        sequence can be gone. If any were after `after_seq`, they can only have belonged to this job if
        the job started before that point, i.e. if its job.requested is gone too. Explicit deletes in the
        middle of the stream are not detected.
        """
        first, _ = await self._events.bounds()
        if after_seq + 1 >= first:
            return True
        earliest = await self._events.next_of_job(self.job_id, first)
        if earliest is None:
            # Nothing of the job remains: a fresh subscription to an unknown (or not yet started) job
            # simply sees nothing; a client that had seen some of it needs to know it is gone.
            return after_seq == 0
        return subjects.parse_content(earliest.subject)[1] == FIRST_EVENT_TYPE

    async def _resync(self) -> int:
        """Sends a `resync` frame with the job's remaining events; returns the sequence it covers."""
        seq, covered = await self._events.bounds()  # nothing of the job up to `covered` beyond the walk
        events: list[dict[str, Any]] = []
        last_event_seq = 0
        while len(events) < MAX_SNAPSHOT_EVENTS:
            stored = await self._events.next_of_job(self.job_id, seq)
            if stored is None:
                break
            event = decode_event(stored.data)
            if event is not None:
                events.append(event)
            last_event_seq = stored.seq
            seq = stored.seq + 1
        snapshot_seq = last_event_seq or covered
        self.skip_to(snapshot_seq)
        log.info("history expired, resync", job_id=self.job_id, seq=snapshot_seq, events=len(events))
        await self._emit(ResyncFrame(job_id=self.job_id, seq=snapshot_seq, state={"events": events}))
        return snapshot_seq


class FeedSet:
    """The job feeds of one connection, and the marks of jobs it unsubscribed from (so a later
    re-subscribe does not resend what this connection already delivered)."""

    def __init__(self, nc: Client, events: EventStore, emit: Emit) -> None:
        self._nc = nc
        self._events = events
        self._emit = emit
        self._feeds: dict[str, JobFeed] = {}
        self._marks: dict[str, int] = {}

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._feeds

    def __len__(self) -> int:
        return len(self._feeds)

    async def subscribe(self, job_id: str, after_seq: int = 0) -> None:
        feed = self._feeds.get(job_id)
        if feed is not None:
            # Already streaming everything after its mark: only skip what the client says it has.
            feed.skip_to(after_seq)
            return
        feed = JobFeed(self._nc, self._events, job_id, self._emit, mark=self._marks.pop(job_id, 0))
        self._feeds[job_id] = feed  # registered first, so close() frees a start that is interrupted
        try:
            await feed.start(after_seq)
        except BaseException:
            self._forget(job_id, feed)
            await feed.stop()
            raise

    async def unsubscribe(self, job_id: str) -> bool:
        feed = self._feeds.get(job_id)
        if feed is None:
            return False
        self._forget(job_id, feed)
        await feed.stop()
        return True

    async def close(self) -> None:
        feeds = list(self._feeds.values())
        self._feeds.clear()
        await asyncio.gather(*(feed.stop() for feed in feeds), return_exceptions=True)

    def _forget(self, job_id: str, feed: JobFeed) -> None:
        if self._feeds.get(job_id) is feed:
            del self._feeds[job_id]
        self._marks[job_id] = max(self._marks.get(job_id, 0), feed.mark)
