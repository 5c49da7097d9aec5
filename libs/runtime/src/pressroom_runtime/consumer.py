"""Binds a handler to a durable consumer and applies the delivery rules around it (docs/reliability.md).

A replica works on up to `concurrency` messages at once, fetched by a slot-bounded pull loop (pull.py:
never more than it can hold, so nothing it fetched is redelivered to another replica), each in its own
task, in stream order per job. Per message, in this order:

1. the subject and the body are validated; a message invalid in itself is terminated with its reason
   and recorded as a dead letter — it never fails the job whose subject it was found on;
2. a stage looks the job up (jobstates.py: from memory, following the job-state bucket): a job nobody
   requested gets no work (terminated as `job_unknown`, dead-lettered), a cancelled or failed one is
   acknowledged and left alone;
3. the handler runs, kept alive with in_progress() while it does, in the trace of the message's producer;
4. the outcome is settled: ack once everything the handler published was acknowledged by the stream;
   a dependency that is down (errors.Verdict.wait) is waited out — the message is kept and its handler
   tried again at a paced interval, and the replica fetches nothing new meanwhile; an unexpected error
   is NAKed with a growing delay, at most max_deliver times; a permanent one (or the last attempt)
   announces `stage.failed` (stages) and is terminated and dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from faststream.nats import NatsBroker
from nats.aio.client import Client
from nats.aio.msg import Msg
from opentelemetry import trace
from pydantic import BaseModel, ValidationError

from pressroom_contracts import parties, subjects
from pressroom_contracts.events import (
    STOPPED_TYPES,
    BlogCompletedEvent,
    BlogEditedEvent,
    Envelope,
    Producer,
    Stage,
    StageFailed,
    StageFailedEvent,
    StageProgress,
    StageProgressEvent,
    UsageRecordedEvent,
    parse_event,
)
from pressroom_contracts.protocol import describe_validation_error
from pressroom_contracts.topology import ConsumerSpec

from . import deadletter, history
from .broker import Publisher
from .errors import Classified, InvalidInput, JobStopped, JobUnknown, Verdict, classify, retry_delay
from .jobstates import JobStates
from .logs import get_logger
from .observability import HANDLER_SECONDS, MESSAGES, PROPAGATOR, WAITING, tracer_provider
from .outage import outlast
from .pull import SlotPuller
from .settings import ServiceSettings
from .usage import Meter, call_name

log = get_logger(__name__)
T = TypeVar("T")
# Live text is sent at most this often per job: a model streams a piece every few milliseconds, and one
# NATS message (and one frame for every watcher) per piece costs more than the text is worth.
LIVE_INTERVAL = 0.05


class StageContext:
    """What a handler may do for the job it is working on: emit events, report progress, stream text."""

    def __init__(
        self,
        publisher: Publisher,
        producer: Producer,
        stage: Stage | None,
        job_id: str,
        cause: Envelope | None,
        attempt: int,
        jobs: JobStates | None = None,
        *,
        run: int = 1,
        usage_interval: float = 5.0,
    ) -> None:
        self.publisher = publisher
        self.producer = producer
        self.stage = stage
        self.job_id = job_id
        self.cause = cause
        self.attempt = attempt  # the delivery of the input
        self.run = run  # the try within this delivery (another one after an outage was waited out)
        self.usage_interval = usage_interval
        self._jobs = jobs
        self._step = 0
        self._live: tuple[int, list[str]] | None = None  # live text held back: its offset, its pieces
        self._live_end = 0
        self._live_timer: asyncio.Task[None] | None = None
        self._live_sending: asyncio.Task[Any] | None = None
        self._live_lock = asyncio.Lock()  # one send at a time, so watchers get the pieces in order

    async def _connection(self) -> Client:
        return await self.publisher.broker.connect()

    def make(self, event_cls: type[Envelope], data: BaseModel) -> Envelope:
        return event_cls(
            job_id=self.job_id,
            producer=self.producer,
            causation_id=self.cause.id if self.cause else None,
            attempt=self.attempt,
            data=data,
        )

    async def emit(self, event_cls: type[Envelope], data: BaseModel) -> int:
        await self.flush_live()  # the text a watcher has is complete before the event that ends it
        return await self.publisher.publish(self.make(event_cls, data))

    async def progress(self, message: str) -> None:
        assert self.stage is not None
        self._step += 1
        await self.emit(StageProgressEvent, StageProgress(stage=self.stage, step=self._step, message=message))

    async def recorded(self, event_cls: type[Envelope], limit: int | None = None) -> list[Envelope]:
        """What this job already has of one event type (see history.recorded)."""
        event_type = event_cls.model_fields["type"].default
        if self.publisher.service is not None:
            parties.check_read(self.publisher.service, event_type)
        return await history.recorded(await self._connection(), self.job_id, event_type, limit)

    async def ensure_active(self) -> None:
        """Call before each provider call: one job-state lookup. Raises JobStopped once the job was
        cancelled or failed, JobUnknown when nobody ever requested it."""
        nc = await self._connection()
        if self._jobs is None:
            self._jobs = JobStates(nc)
        state = await self._jobs.get(self.job_id)
        if state is not None:
            if state.stopped:
                raise JobStopped(f"the job is {state.status}")
            return
        # No entry: a job started by publishing job.requested directly. Its stream is the record.
        if not await history.exists(nc, self.job_id, "job.requested"):
            raise JobUnknown(f"job {self.job_id} was never requested")
        for event_type in STOPPED_TYPES:
            if await history.exists(nc, self.job_id, event_type):
                raise JobStopped(f"the job is {event_type.removeprefix('job.')}")

    async def handled_before(self, event_cls: type[Envelope]) -> list[Envelope]:
        """Events of one type this very input already produced (before a crash, say)."""
        cause = self.cause.id if self.cause else None
        return [e for e in await self.recorded(event_cls) if e.causation_id == cause]

    async def republish_handled(self, event_cls: type[Envelope]) -> list[Envelope]:
        """What this input already produced, published again (the stream drops the duplicates): a
        redelivery after a crash re-announces the result instead of paying for it twice."""
        done = await self.handled_before(event_cls)
        for event in done:
            await self.publisher.publish(event)
        return done

    async def latest_blog(self) -> BlogCompletedEvent | BlogEditedEvent | None:
        """The newest text of the job's post: written by the model or replaced by a person."""
        written = [e for e in await self.recorded(BlogCompletedEvent) if isinstance(e, BlogCompletedEvent)]
        edited = [e for e in await self.recorded(BlogEditedEvent) if isinstance(e, BlogEditedEvent)]
        texts: list[BlogCompletedEvent | BlogEditedEvent] = [*written, *edited]
        return max(texts, key=lambda e: (e.data.version, e.occurred_at), default=None)

    async def delta(self, offset: int, text: str) -> None:
        """Live text at `offset`. Pieces that follow each other are sent together, at most LIVE_INTERVAL
        after the first of them; a piece elsewhere (a rewrite) sends what is held first."""
        assert self.stage is not None
        if self._live is not None and offset == self._live_end:
            self._live[1].append(text)
        else:
            await self.flush_live()
            self._live = (offset, [text])
            self._live_timer = asyncio.create_task(self._flush_live_later())
        self._live_end = offset + len(text)

    async def _flush_live_later(self) -> None:
        await asyncio.sleep(LIVE_INTERVAL)
        # Awake: from here on nobody cancels it, so what it sends is not lost; the loop keeps only a
        # weak reference to a task, so this context keeps it until it is done.
        self._live_timer, self._live_sending = None, asyncio.current_task()
        try:
            await self.flush_live()
        except Exception as exc:  # live text is best effort; the stored event carries the whole text
            log.warning("live text not sent", error=str(exc))
        finally:
            self._live_sending = None

    async def flush_live(self) -> None:
        """Sends the live text held back, if any."""
        timer, self._live_timer = self._live_timer, None
        if timer is not None:  # still asleep: this call sends what it would have
            timer.cancel()
        async with self._live_lock:
            if self._live is None:
                return
            (offset, pieces), self._live = self._live, None
            assert self.stage is not None
            await self.publisher.delta(self.job_id, self.stage, offset, "".join(pieces))

    def drop_live(self) -> None:
        """The handler failed: what is held back is not sent (its try is over)."""
        if self._live_timer is not None:
            self._live_timer.cancel()
        self._live_timer, self._live = None, None

    def meter(self, call: str, *, provider: str, model: str) -> Meter:
        """A provider call's running usage, reported as it happens (usage.py): `async with ctx.meter(…) as
        m:` around the call, `m.add(…)` as it goes, or pass it to TextModel.stream(meter=m)."""
        assert self.stage is not None
        return Meter(
            lambda data: self.emit(UsageRecordedEvent, data),
            stage=self.stage,
            call=call_name(call, self.attempt, self.run),
            provider=provider,
            model=model,
            interval=self.usage_interval,
        )

    async def usage(
        self,
        call: str,
        provider: str,
        model: str,
        input_tokens: int = 0,
        output_tokens: int = 0,
        images: int = 0,
        calls: int = 0,
    ) -> None:
        """Records one finished provider call, its estimated cost from the price table included."""
        meter = self.meter(call, provider=provider, model=model)
        meter.add(input_tokens, output_tokens, images, calls)
        await meter.report()

    async def fail(self, failure: Classified) -> None:
        assert self.stage is not None
        await self.emit(
            StageFailedEvent,
            StageFailed(
                stage=self.stage,
                code=failure.code,
                message=failure.message[:2000],
                retryable=failure.verdict is not Verdict.fail,
                attempt=self.attempt,
            ),
        )


Handler = Callable[[Any, StageContext], Awaitable[None]]


@dataclass(frozen=True)
class Delivery:
    """How a replica takes messages: how many at once, and the pacing of its tries."""

    concurrency: int = 64
    retry_base: float = 1.0
    retry_max: float = 30.0
    drain: float = 20.0
    lag_interval: float = 10.0
    usage_interval: float = 5.0

    @classmethod
    def of(cls, settings: ServiceSettings) -> Delivery:
        return cls(
            concurrency=settings.concurrency,
            retry_base=settings.retry_base_seconds,
            retry_max=settings.retry_max_seconds,
            drain=settings.drain_seconds,
            lag_interval=settings.lag_interval_seconds,
            usage_interval=settings.usage_report_seconds,
        )


def bind_consumer(
    broker: NatsBroker,
    *,
    consumer: ConsumerSpec,
    accepts: tuple[type[Envelope], ...],
    handler: Handler,
    publisher: Publisher,
    producer: Producer,
    stage: Stage | None,
    delivery: Delivery | None = None,
    check_job: bool | None = None,
) -> Consumer:
    """The handler bound to the durable `consumer`, which provisioning has created. Call start() once the
    broker is connected and stop() before it closes (stage_app and persistence's app do).

    With `stage` set, a permanent failure is announced as `stage.failed` so the job ends visibly. With
    `check_job` (by default: when `stage` is set) the job must have been requested and be active before
    the handler runs.
    """
    return Consumer(
        broker, consumer, accepts, handler, publisher, producer, stage, delivery or Delivery(),
        stage is not None if check_job is None else check_job,
    )  # fmt: skip


class Consumer:
    def __init__(
        self,
        broker: NatsBroker,
        consumer: ConsumerSpec,
        accepts: tuple[type[Envelope], ...],
        handler: Handler,
        publisher: Publisher,
        producer: Producer,
        stage: Stage | None,
        delivery: Delivery,
        check_job: bool,
    ) -> None:
        self.broker = broker
        self.consumer = consumer
        self.accepts = accepts
        self.handler = handler
        self.publisher = publisher
        self.producer = producer
        self.stage = stage
        self.delivery = delivery
        self.check_job = check_job
        self.tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider(producer.service))
        self._order = _KeyedLocks()
        self._waiting = 0  # messages waiting out a dependency's outage; while > 0 nothing is fetched
        self._puller: SlotPuller | None = None
        self._nc: Client | None = None
        self._jobs: JobStates | None = None

    async def start(self) -> None:
        self._nc = await self.broker.connect()
        self._jobs = JobStates(self._nc)
        if self.check_job:  # a stage looks its jobs up before every provider call: from memory
            await self._jobs.follow()
        self._puller = SlotPuller(
            self._nc,
            stream=self.consumer.stream,
            durable=self.consumer.durable,
            slots=self.delivery.concurrency,
            handle=self.process,
            ack_wait=self.consumer.ack_wait_seconds,
            lag_interval=self.delivery.lag_interval,
            paused=lambda: self._waiting > 0,
        )
        await self._puller.start()
        log.info("consuming", consumer=self.consumer.durable, concurrency=self.delivery.concurrency)

    async def stop(self) -> None:
        if self._puller is not None:
            await self._puller.stop(self.delivery.drain)
            self._puller = None
        if self._jobs is not None:
            await self._jobs.close()

    @property
    def in_use(self) -> int:
        return self._puller.in_use if self._puller else 0

    # ---- one message --------------------------------------------------------------------------------------

    async def process(self, msg: Msg) -> None:
        try:
            job_id: str | None = subjects.parse_content(msg.subject)[0]
        except subjects.SubjectError:
            job_id = None
        # No await before the lock is queued for: messages of one job start in the order they arrived.
        async with self._order.hold(job_id or msg.subject):
            attempt = msg.metadata.num_delivered or 1
            parent = PROPAGATOR.extract(msg.headers or {})
            with (
                structlog.contextvars.bound_contextvars(subject=msg.subject, attempt=attempt, job_id=job_id),
                HANDLER_SECONDS.labels(self.consumer.durable).time(),
                self.tracer.start_as_current_span(
                    f"{self.consumer.durable} process",
                    context=parent,
                    kind=trace.SpanKind.CONSUMER,
                    attributes={"messaging.system": "nats", "messaging.destination.name": msg.subject},
                ),
            ):
                try:
                    outcome = await self._settle(msg, job_id, attempt)
                except asyncio.CancelledError:  # shutting down: hand it to another replica at once
                    with contextlib.suppress(Exception):
                        await msg.nak()
                    raise
        MESSAGES.labels(self.consumer.durable, outcome).inc()

    async def _settle(self, msg: Msg, job_id: str | None, attempt: int) -> str:
        """Runs the handler and settles the message; returns the outcome for the metrics."""
        if job_id is None:
            return await self._terminate(
                msg, InvalidInput(f"not a content subject: {msg.subject!r}"), attempt
            )
        try:
            event = self._parse(msg.data, job_id)
        except InvalidInput as exc:
            return await self._terminate(msg, exc, attempt)

        def context(run: int) -> StageContext:
            return StageContext(
                self.publisher, self.producer, self.stage, job_id, event, attempt, self._jobs,
                run=run, usage_interval=self.delivery.usage_interval,
            )  # fmt: skip

        ctx = context(1)
        tries = 0
        try:
            if self.check_job:
                await self._outlast(ctx.ensure_active)

            async def handle() -> None:
                nonlocal ctx, tries
                tries += 1
                if tries > 1:  # another try after an outage: its own progress steps and call names
                    ctx = context(tries)
                try:
                    await self.handler(event, ctx)
                except BaseException:
                    ctx.drop_live()
                    raise
                await ctx.flush_live()

            await self._outlast(handle)
        except JobStopped as stopped:
            log.info("job no longer active: nothing more to do", reason=stopped.message)
            await self._outlast(msg.ack)
            return "stopped"
        except JobUnknown as unknown:
            return await self._terminate(msg, unknown, attempt)
        except Exception as exc:
            return await self._failed(msg, ctx, exc)
        await self._outlast(msg.ack)
        return "acked"

    def _parse(self, data: bytes, job_id: str) -> Envelope:
        try:
            event = parse_event(data)
        except ValidationError as exc:
            raise InvalidInput(f"invalid event: {describe_validation_error(exc)}") from None
        if not isinstance(event, self.accepts):
            raise InvalidInput(f"unexpected event type {event.type!r} on consumer {self.consumer.durable}")
        if event.job_id != job_id:
            raise InvalidInput(f"event job_id {event.job_id!r} does not match its subject")
        return event

    async def _failed(self, msg: Msg, ctx: StageContext, exc: Exception) -> str:
        failure = classify(exc)
        last = ctx.attempt >= self.consumer.max_deliver
        if failure.verdict is Verdict.retry and not last:
            delay = retry_delay(ctx.attempt, self.delivery.retry_base, self.delivery.retry_max)
            log.warning(
                "will retry",
                code=failure.code,
                reason=failure.message,
                delay=delay,
                exc_info=failure.code == "internal_error",
            )
            await self._outlast(lambda: msg.nak(delay=delay))
            return "retried"
        log.error(
            "giving up",
            code=failure.code,
            reason=failure.message,
            retries_exhausted=last,
            exc_info=failure.code == "internal_error",
        )
        if self.stage is not None:
            await self._outlast(lambda: ctx.fail(failure))
        await self._terminate(msg, exc, ctx.attempt, failure)
        return "failed"

    async def _terminate(
        self, msg: Msg, exc: Exception, attempt: int, failure: Classified | None = None
    ) -> str:
        """Records the message as a dead letter, then terminates it: it is never delivered again."""
        failure = failure or classify(exc)
        if failure.verdict is Verdict.fail:
            log.warning("terminated", code=failure.code, reason=failure.message)
        meta = msg.metadata
        letter = deadletter.DeadLetter.of(
            msg,
            consumer=self.consumer.durable,
            stream=meta.stream or self.consumer.stream,
            stream_seq=meta.sequence.stream or 0,
            subject=msg.subject,
            reason=failure.code,
            detail=failure.message,
            deliveries=attempt,
        )
        nc = self._nc or await self.broker.connect()
        await self._outlast(lambda: deadletter.record(nc, letter))
        reason = f"{failure.code}: {failure.message}"[:200].replace("\n", " ")
        await self._outlast(lambda: nc.publish(msg.reply, f"+TERM {reason}".encode()))
        return "rejected"

    # ---- waiting out an outage ------------------------------------------------------------------------

    async def _outlast(self, step: Callable[[], Awaitable[T]]) -> T:
        """Runs `step`, waiting out any outage it meets; meanwhile the message stays held and alive and
        this replica fetches nothing new."""
        return await outlast(
            step, base=self.delivery.retry_base, cap=self.delivery.retry_max, waiting=self._wait
        )

    def _wait(self, starts: bool) -> None:
        self._waiting += 1 if starts else -1
        WAITING.labels(self.consumer.durable).set(self._waiting)
        if not self._waiting and self._puller is not None:
            self._puller.wake()


class _KeyedLocks:
    """One FIFO lock per key (a job), dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
