"""The gateway's fan-out: one feed per watched job per process, shared by every local watcher.

NATS work grows with the jobs watched here, not with the watchers: a job's `JobFeed` holds one ordered
consumer on `content.<job>.>` (the stored events) and one core subscription on `live.<job>.>` (the text
as it is written), and hands each item, encoded once, to every watcher's bounded queue. A watcher that
does not keep up overflows its own queue and is dropped by its connection; the others are not slowed.

The feed keeps what the stream holds of its job in memory, so a watcher joining with `after_seq` (a
reconnect) is served from there, with no consumer of its own: the events after its sequence, then, for
a stage still writing, one `delta` with the text so far (offset 0), then the live items. The text so far
survives a gateway restart or a reconnect to another replica: the `LIVE` stream keeps the deltas for a
few minutes (memory storage), and a new feed reads them back and coalesces them.

When the stream no longer holds a job's start (its history expired) and the watcher missed some of it,
it gets one `resync` frame with the job's remaining events instead (docs/protocol.md).

A feed lives while it has watchers, and `linger` seconds after the last one leaves (a page reload or a
reconnect finds it still there).

Starting a feed is retried, paced, for up to `start_within` seconds when the bus answers "not now" (a
timeout, no responders, JetStream unavailable): what a NATS cluster answers while the stream's leader is
being elected, or while the client moves to another server. A watcher rides through that instead of
being told to try again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError, ServerError, ServiceUnavailableError
from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from pressroom_contracts import subjects
from pressroom_contracts.protocol import DeltaFrame, DeltaMessage, ResyncFrame
from pressroom_runtime.logs import get_logger

from .metrics import FEED_START_RETRIES
from .stream import EventStore

log = get_logger(__name__)

FIRST_EVENT_TYPE = "job.requested"
CLEANUP_TIMEOUT = 2.0
# What the bus answers while a stream's leader is being elected or the client reconnects: it passes.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    asyncio.TimeoutError,  # nats.errors.TimeoutError among them
    nats.errors.NoRespondersError,
    nats.errors.ConnectionReconnectingError,
    ServiceUnavailableError,
    ServerError,
)


@dataclass(frozen=True, slots=True)
class Item:
    """One thing a watcher is sent. `frame` is the `/v1/ws` frame, encoded once for every watcher;
    SSE and `/content` read the other fields."""

    kind: Literal["event", "delta", "resync"]
    frame: str
    seq: int | None = None
    event_type: str | None = None
    envelope: str | None = None  # the stored event as JSON (event items)


def decode_event(data: bytes) -> dict[str, Any] | None:
    """The stored envelope as a JSON object, or None if the stream holds something else."""
    try:
        value = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def event_item(job_id: str, seq: int, data: bytes) -> Item | None:
    """The item of a stored message, or None when it is not an event (skipped with a log line)."""
    envelope = data.decode("utf-8", errors="replace")
    event = decode_event(data)
    if event is None:
        log.warning("skipping a stored message that is not an event", job_id=job_id, seq=seq)
        return None
    # Built by hand so the stored envelope is embedded as it is, not parsed and re-encoded.
    frame = f'{{"type":"event","job_id":{json.dumps(job_id)},"seq":{seq},"event":{envelope}}}'
    return Item("event", frame, seq=seq, event_type=str(event.get("type", "")), envelope=envelope)


def delta_item(job_id: str, stage: str, offset: int, text: str) -> Item:
    return Item("delta", DeltaFrame(job_id=job_id, stage=stage, offset=offset, text=text).model_dump_json())


@dataclass
class LiveText:
    """A stage's text as written so far, coalesced from its deltas (the newest generation: a delta at
    offset 0 that is not a repeat starts a regeneration)."""

    text: str = ""
    done: bool = False  # the stage's completion event came after this text

    def apply(self, offset: int, piece: str) -> None:
        end = offset + len(piece)
        if end <= len(self.text) and self.text[offset:end] == piece:
            return  # a repeat (read back from LIVE and received live)
        if offset == 0 or offset > len(self.text):  # a new generation, or a gap: keep what we can show
            self.text = piece if offset == 0 else self.text + piece
        else:
            self.text = self.text[:offset] + piece
        self.done = False


Sink = Callable[[Item], bool]


@dataclass(eq=False)
class Watch:
    """One watcher of one job: its sink (a connection's queue) and the last sequence it was given."""

    job_id: str
    sink: Sink
    deltas: bool = True
    mark: int = 0
    feed: JobFeed | None = field(default=None, repr=False)

    def give(self, item: Item) -> None:
        if item.kind == "delta":
            if self.deltas:
                self.sink(item)
            return
        assert item.seq is not None
        if item.seq <= self.mark:
            return
        self.mark = item.seq
        self.sink(item)


class JobFeed:
    def __init__(self, hub: Hub, job_id: str) -> None:
        self.hub = hub
        self.job_id = job_id
        self.items: list[Item] = []  # every event the stream holds of the job, in order
        self.mark = 0  # the highest stream sequence in `items` (or walked past)
        self.texts: dict[str, LiveText] = {}
        self.watches: set[Watch] = set()
        self.stream_first_seq = 0
        self.stream_last_seq = 0
        self._completed_at: dict[str, datetime] = {}  # server time of each stage's latest completion
        self._stored: JetStreamContext.PushSubscription | None = None
        self._live: Subscription | None = None
        self._early_deltas: list[tuple[str, DeltaMessage]] | None = []  # received while catching up
        self._stopped = False
        self._linger: asyncio.TimerHandle | None = None
        self.started: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # ---- start and stop ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Reads the job's history and subscribes. A failed start leaves nothing subscribed and the feed
        as new, so it can be started again."""
        try:
            await self._subscribe()
        except BaseException:
            await asyncio.shield(self._release())
            self.items, self.mark, self.texts, self._completed_at = [], 0, {}, {}
            self._early_deltas = []
            raise

    async def _subscribe(self) -> None:
        nc, js = self.hub.nc, self.hub.js
        # Live deltas first, so none produced while we catch up is missed (repeats are recognised).
        self._live = await nc.subscribe(subjects.live_of_job(self.job_id), cb=self._on_delta)
        self.stream_first_seq, self.stream_last_seq = await self.hub.events.bounds()
        await self._read_history()
        await self._read_live_text()
        early, self._early_deltas = self._early_deltas or [], None
        for stage, delta in early:
            self._text(stage).apply(delta.offset, delta.text)
        # Then every event stored after what we read, live: no gap between the two.
        if self.mark == 0:
            policy, config = DeliverPolicy.ALL, ConsumerConfig()
        else:
            policy, config = DeliverPolicy.BY_START_SEQUENCE, ConsumerConfig(opt_start_seq=self.mark + 1)
        self._stored = await js.subscribe(
            subjects.content_of_job(self.job_id),
            stream=subjects.STREAM,
            cb=self._on_stored,
            ordered_consumer=True,
            deliver_policy=policy,
            config=config,
        )

    async def _read_history(self) -> None:
        seq = self.stream_first_seq
        while (stored := await self.hub.events.next_of_job(self.job_id, seq)) is not None:
            self._add_event(stored.seq, stored.data, stored.time)
            seq = stored.seq + 1

    async def _read_live_text(self) -> None:
        """The deltas LIVE still holds for this job, coalesced per stage; a text whose stage completed
        after its last delta is done (a newcomer is not sent it)."""
        last_delta: dict[str, datetime] = {}
        seq = 1
        while True:
            try:
                msg = await self.hub.js.get_msg(
                    subjects.LIVE_STREAM, seq=seq, subject=subjects.live_of_job(self.job_id), next=True
                )
            except NotFoundError:  # nothing more, or no LIVE stream (not provisioned): live only
                break
            parsed = self._parse_delta(msg.subject or "", msg.data or b"")
            if parsed is not None:
                stage, delta = parsed
                self._text(stage).apply(delta.offset, delta.text)
                if msg.time is not None:
                    last_delta[stage] = msg.time
            seq = (msg.seq or seq) + 1
        for stage, text in self.texts.items():
            completed = self._completed_at.get(stage)
            if completed is not None and (stage not in last_delta or completed >= last_delta[stage]):
                text.done = True

    async def stop(self) -> None:
        """Idempotent. Unsubscribes and deletes the ephemeral consumer so the server does not keep it
        until its inactivity threshold."""
        if self._stopped:
            return
        self._stopped = True
        await self._release()

    async def _release(self) -> None:
        stored, live = self._stored, self._live
        self._stored = self._live = None
        for sub in (live, stored):
            if sub is not None:
                try:
                    await sub.unsubscribe()
                except Exception as exc:  # closed connection, already unsubscribed: nothing left to free
                    log.debug("unsubscribe failed", job_id=self.job_id, error=str(exc))
        consumer = getattr(stored, "_consumer", None)  # nats-py keeps it current across ordered resets
        if consumer and self.hub.nc.is_connected:
            try:
                async with asyncio.timeout(CLEANUP_TIMEOUT):
                    await self.hub.js.delete_consumer(subjects.STREAM, consumer)
            except Exception as exc:  # the server drops an ephemeral consumer without interest anyway
                log.debug("consumer delete failed", job_id=self.job_id, consumer=consumer, error=str(exc))

    def subscriptions(self) -> list[Subscription]:
        """What the feed holds on NATS (tests count them)."""
        return [sub for sub in (self._stored, self._live) if sub is not None]

    # ---- incoming ---------------------------------------------------------------------------------------

    def _add_event(self, seq: int, data: bytes, time: datetime | None) -> None:
        if seq <= self.mark:
            return
        self.mark = seq
        item = event_item(self.job_id, seq, data)
        if item is None:
            return
        self.items.append(item)
        stage, _, outcome = (item.event_type or "").partition(".")
        if outcome == "completed":
            if time is not None:
                self._completed_at[stage] = time
            if stage in self.texts:
                self.texts[stage].done = True
        for watch in list(self.watches):
            watch.give(item)

    async def _on_stored(self, msg: Msg) -> None:
        if not self._stopped:
            self._add_event(msg.metadata.sequence.stream, msg.data, msg.metadata.timestamp)

    @staticmethod
    def _parse_delta(subject: str, data: bytes) -> tuple[str, DeltaMessage] | None:
        try:
            _, stage = subjects.parse_live(subject)
            return stage, DeltaMessage.model_validate_json(data)
        except (subjects.SubjectError, ValidationError) as exc:
            log.warning("skipping a malformed delta", subject=subject, error=str(exc))
            return None

    async def _on_delta(self, msg: Msg) -> None:
        if self._stopped:
            return
        parsed = self._parse_delta(msg.subject, msg.data)
        if parsed is None:
            return
        stage, delta = parsed
        if self._early_deltas is not None:
            self._early_deltas.append(parsed)
            return
        self._text(stage).apply(delta.offset, delta.text)
        item = delta_item(self.job_id, stage, delta.offset, delta.text)
        for watch in list(self.watches):
            watch.give(item)

    def _text(self, stage: str) -> LiveText:
        return self.texts.setdefault(stage, LiveText())

    # ---- watchers ---------------------------------------------------------------------------------------

    def covers(self, after_seq: int) -> bool:
        """Whether the stream still holds every event of this job after `after_seq`.

        The stream discards from the front, so only messages below its first sequence can be gone; they
        belonged to this job only if the job started before that point, i.e. if its job.requested is
        gone too. A fresh watcher of a job with nothing left sees nothing; one that had seen some of it
        needs to know it is gone.
        """
        if after_seq + 1 >= self.stream_first_seq:
            return True
        if not self.items:
            return after_seq == 0
        return self.items[0].event_type == FIRST_EVENT_TYPE

    def resync_item(self) -> Item:
        events = [json.loads(item.envelope or "{}") for item in self.items]
        seq = self.items[-1].seq if self.items else self.stream_last_seq
        assert seq is not None
        frame = ResyncFrame(job_id=self.job_id, seq=seq, state={"events": events})
        return Item("resync", frame.model_dump_json(), seq=seq)

    def attach(self, watch: Watch, after_seq: int) -> None:
        """Everything held after `after_seq`, the text so far of a stage still writing, then live."""
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        watch.feed = self
        if not self.covers(max(after_seq, watch.mark)):
            resync = self.resync_item()
            log.info("history expired, resync", job_id=self.job_id, seq=resync.seq, events=len(self.items))
            watch.mark = resync.seq or 0
            watch.sink(resync)
        watch.mark = max(watch.mark, after_seq)
        for item in self.items:
            watch.give(item)
        for stage, text in self.texts.items():
            if text.text and not text.done:
                watch.give(delta_item(self.job_id, stage, 0, text.text))
        self.watches.add(watch)

    def detach(self, watch: Watch) -> None:
        self.watches.discard(watch)
        if not self.watches and not self._stopped:
            self._linger = asyncio.get_running_loop().call_later(
                self.hub.linger, lambda: self.hub.retire(self)
            )


class Hub:
    """The feeds of one gateway process, by job."""

    def __init__(
        self, nc: Callable[[], Client], events: EventStore, linger: float, start_within: float = 30.0
    ) -> None:
        self._nc = nc
        self.events = events
        self.linger = linger
        self.start_within = start_within
        self.feeds: dict[str, JobFeed] = {}
        self._stopping: set[asyncio.Task[None]] = set()

    @property
    def nc(self) -> Client:
        return self._nc()

    @property
    def js(self) -> JetStreamContext:
        return self.nc.jetstream()

    async def watch(
        self, job_id: str, sink: Sink, *, after_seq: int = 0, mark: int = 0, deltas: bool = True
    ) -> Watch:
        """Starts giving `sink` the job's items after `after_seq` (and after `mark`, what it already
        has). Bus errors propagate; nothing is left subscribed then."""
        subjects.content_of_job(job_id)  # refuse a job id that is not a subject token before anything else
        feed = self.feeds.get(job_id)
        if feed is None:
            feed = JobFeed(self, job_id)
            self.feeds[job_id] = feed
            try:
                await self._start(feed)
            except BaseException as exc:
                self.feeds.pop(job_id, None)
                feed.started.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
                feed.started.exception()  # retrieved: no "never retrieved" warning when nobody waits
                await asyncio.shield(feed.stop())
                raise
            feed.started.set_result(None)
        else:
            await asyncio.shield(feed.started)
        watch = Watch(job_id, sink, deltas=deltas, mark=mark)
        feed.attach(watch, after_seq)
        return watch

    async def _start(self, feed: JobFeed) -> None:
        """Starts `feed`, again and again (paced) while the bus answers "not now", for `start_within`."""

        def retrying(state: RetryCallState) -> None:
            FEED_START_RETRIES.inc()
            error = state.outcome.exception() if state.outcome else None
            log.info(
                "feed start retried", job_id=feed.job_id, attempt=state.attempt_number, error=repr(error)
            )

        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(TRANSIENT_ERRORS),
            stop=stop_after_delay(self.start_within),
            wait=wait_exponential_jitter(multiplier=0.2, max=2.0),
            before_sleep=retrying,
            reraise=True,
        ):
            with attempt:
                await feed.start()

    def unwatch(self, watch: Watch) -> None:
        if watch.feed is not None:
            watch.feed.detach(watch)
            watch.feed = None

    def retire(self, feed: JobFeed) -> None:
        if feed.watches or self.feeds.get(feed.job_id) is not feed:
            return
        del self.feeds[feed.job_id]
        task = asyncio.create_task(feed.stop())
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def close(self) -> None:
        feeds = list(self.feeds.values())
        self.feeds.clear()
        await asyncio.gather(*(feed.stop() for feed in feeds), *self._stopping, return_exceptions=True)
