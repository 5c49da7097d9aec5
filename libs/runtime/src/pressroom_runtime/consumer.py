"""Binds a handler to a durable consumer and applies the delivery rules of docs/reliability.md around it.

Every message is validated first; a handler only ever sees a typed event. While it runs, the message
is kept alive with in_progress() so a long LLM call is not redelivered to another replica. Its outcome
is settled in one place: ack on success, paced NAK on a transient error, TERM (and `stage.failed`, for
stage services) on a permanent one or when the attempts run out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from nats.js.errors import NotFoundError
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
    UsageRecorded,
    UsageRecordedEvent,
    parse_event,
)
from pressroom_contracts.protocol import describe_validation_error
from pressroom_contracts.topology import ConsumerSpec

from .broker import Publisher
from .errors import Classified, InvalidInput, JobStopped, Verdict, classify, retry_delay
from .history import recorded
from .logs import get_logger
from .observability import HANDLER_SECONDS, MESSAGES
from .pricing import estimate_cost

log = get_logger(__name__)


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
    ) -> None:
        self.publisher = publisher
        self.producer = producer
        self.stage = stage
        self.job_id = job_id
        self.cause = cause
        self.attempt = attempt
        self._step = 0

    def make(self, event_cls: type[Envelope], data: BaseModel) -> Envelope:
        return event_cls(
            job_id=self.job_id,
            producer=self.producer,
            causation_id=self.cause.id if self.cause else None,
            attempt=self.attempt,
            data=data,
        )

    async def emit(self, event_cls: type[Envelope], data: BaseModel) -> int:
        return await self.publisher.publish(self.make(event_cls, data))

    async def progress(self, message: str) -> None:
        assert self.stage is not None
        self._step += 1
        await self.emit(StageProgressEvent, StageProgress(stage=self.stage, step=self._step, message=message))

    async def recorded(self, event_cls: type[Envelope]) -> list[Envelope]:
        """What this job already has of one event type (see history.recorded)."""
        event_type = event_cls.model_fields["type"].default
        if self.publisher.service is not None:
            parties.check_read(self.publisher.service, event_type)
        connection = await self.publisher.broker.connect()
        return await recorded(connection, self.job_id, event_type)

    async def ensure_active(self) -> None:
        """Call before each provider call: raises JobStopped once the job was cancelled or failed."""
        connection = await self.publisher.broker.connect()
        js = connection.jetstream()
        for event_type in STOPPED_TYPES:
            try:
                await js.get_last_msg(subjects.STREAM, subjects.content(self.job_id, event_type))
            except NotFoundError:
                continue
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
        assert self.stage is not None
        await self.publisher.delta(self.job_id, self.stage, offset, text)

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
        """Records one provider call, its estimated cost from the price table included."""
        assert self.stage is not None
        cost_usd = estimate_cost(model, input_tokens, output_tokens, images, calls)
        await self.emit(
            UsageRecordedEvent,
            UsageRecorded(
                stage=self.stage,
                call=call,
                provider=provider,
                model=model,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                images=images,
                cost_usd=cost_usd,
            ),
        )

    async def fail(self, failure: Classified) -> None:
        assert self.stage is not None
        await self.emit(
            StageFailedEvent,
            StageFailed(
                stage=self.stage,
                code=failure.code,
                message=failure.message[:2000],
                retryable=failure.verdict is Verdict.retry,
                attempt=self.attempt,
            ),
        )


Handler = Callable[[Any, StageContext], Awaitable[None]]


def bind_consumer(
    broker: NatsBroker,
    *,
    consumer: ConsumerSpec,
    accepts: tuple[type[Envelope], ...],
    handler: Handler,
    publisher: Publisher,
    producer: Producer,
    stage: Stage | None,
) -> None:
    """Subscribe `handler` to the durable `consumer`, which provisioning has created.

    With `stage` set, a permanent failure is announced as `stage.failed` so the job ends visibly.
    """
    runner = _Runner(consumer, accepts, handler, publisher, producer, stage)

    # The subject only names the subscription: the durable's own filters decide what it receives.
    @broker.subscriber(
        consumer.filter_subjects[0],
        stream=JStream(name=subjects.STREAM, declare=False),
        durable=consumer.durable,
        pull_sub=PullSub(batch_size=1, timeout=5.0),
        ack_policy=AckPolicy.MANUAL,
        title=f"{consumer.durable}:{','.join(consumer.filter_subjects)}",
        description=consumer.description,
    )
    async def on_message(msg: NatsMessage) -> None:
        await runner.process(msg)


class _Runner:
    def __init__(
        self,
        consumer: ConsumerSpec,
        accepts: tuple[type[Envelope], ...],
        handler: Handler,
        publisher: Publisher,
        producer: Producer,
        stage: Stage | None,
    ) -> None:
        self.consumer = consumer
        self.accepts = accepts
        self.handler = handler
        self.publisher = publisher
        self.producer = producer
        self.stage = stage

    async def process(self, msg: NatsMessage) -> None:
        raw = msg.raw_message
        attempt = raw.metadata.num_delivered or 1
        with (
            structlog.contextvars.bound_contextvars(subject=raw.subject, attempt=attempt),
            HANDLER_SECONDS.labels(self.consumer.durable).time(),
        ):
            outcome = await self._settle(msg, raw.subject, raw.data, attempt)
        MESSAGES.labels(self.consumer.durable, outcome).inc()

    async def _settle(self, msg: NatsMessage, subject: str, data: bytes, attempt: int) -> str:
        """Runs the handler and settles the message; returns the outcome for the metrics."""
        try:
            job_id, _ = subjects.parse_content(subject)
        except subjects.SubjectError as exc:
            log.error("rejected message", reason=str(exc))
            await msg.reject()
            return "rejected"
        with structlog.contextvars.bound_contextvars(job_id=job_id):
            ctx = StageContext(self.publisher, self.producer, self.stage, job_id, None, attempt)
            try:
                event = self._parse(data, job_id)
            except InvalidInput as exc:
                return await self._settle_failure(msg, ctx, exc)
            ctx.cause = event
            keepalive = asyncio.create_task(self._keep_alive(msg))
            try:
                await self.handler(event, ctx)
            except JobStopped as stopped:
                log.info("job no longer active: nothing more to do", reason=stopped.message)
                await msg.ack()
                return "stopped"
            except Exception as exc:
                return await self._settle_failure(msg, ctx, exc)
            finally:
                keepalive.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keepalive
            await msg.ack()
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

    async def _keep_alive(self, msg: NatsMessage) -> None:
        interval = self.consumer.ack_wait_seconds / 3
        while True:
            await asyncio.sleep(interval)
            await msg.in_progress()

    async def _settle_failure(self, msg: NatsMessage, ctx: StageContext, exc: Exception) -> str:
        failure = classify(exc)
        last = ctx.attempt >= self.consumer.max_deliver
        if failure.verdict is Verdict.retry and not last:
            delay = retry_delay(ctx.attempt)
            log.warning(
                "will retry",
                code=failure.code,
                reason=failure.message,
                delay=delay,
                exc_info=failure.code == "internal_error",
            )
            await msg.nack(delay=delay)
            return "retried"
        log.error(
            "giving up",
            code=failure.code,
            reason=failure.message,
            retries_exhausted=last,
            exc_info=failure.code == "internal_error",
        )
        if self.stage is not None:
            try:
                await ctx.fail(failure)
            except Exception:
                # Could not tell anyone: keep the message so a later delivery can try again.
                log.exception("could not publish stage.failed")
                await msg.nack(delay=retry_delay(ctx.attempt))
                return "retried"
        await msg.reject()
        return "failed"
