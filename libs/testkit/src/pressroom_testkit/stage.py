"""A StageContext without a broker, for fast tests of stage logic: it keeps the job's stream as a list
and records everything a handler did, in order.

    ctx = FakeStageContext.handling(job.research(sources=2), Stage.blog, history=[job.requested()])
    await handler(ctx.cause, ctx)
    [blog] = ctx.emitted(BlogCompletedEvent)
    assert ctx.actions.index("ensure_active") < ctx.actions.index("usage blog:1")

It behaves as the stream does where handlers rely on it: what is emitted is recorded (a second event
with the same de-duplication key is dropped), and a job with job.cancelled or job.failed on its stream
is stopped (ensure_active raises JobStopped).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel

from pressroom_contracts.events import (
    STOPPED_TYPES,
    BlogCompletedEvent,
    BlogEditedEvent,
    Envelope,
    Producer,
    Stage,
    StageProgress,
    StageProgressEvent,
    UsageRecorded,
    UsageRecordedEvent,
)
from pressroom_runtime.errors import JobStopped
from pressroom_runtime.stage import StageContext
from pressroom_runtime.usage import Meter

from .events import TEST_PRODUCER

E = TypeVar("E", bound=Envelope)


class FakeStageContext:
    """The StageContext of one input of one job. `history` is the job's stream before the input."""

    def __init__(
        self,
        job_id: str,
        stage: Stage | None,
        *,
        cause: Envelope | None = None,
        attempt: int = 1,
        history: Iterable[Envelope] = (),
        producer: Producer = TEST_PRODUCER,
    ) -> None:
        self.job_id = job_id
        self.stage = stage
        self.cause = cause
        self.attempt = attempt
        self.producer = producer
        self.history: list[Envelope] = []  # the job's stream: deduplicated, in order
        self.published: list[Envelope] = []  # every publish this handler made, duplicates included
        self.deltas: list[tuple[int, str]] = []
        self.actions: list[
            str
        ] = []  # "ensure_active", "progress <message>", "usage <call>", "emit <type>", …
        self._step = 0
        for event in history:
            self._store(event)
        if cause is not None:
            self._store(cause)

    @classmethod
    def handling(
        cls, event: Envelope, stage: Stage | None, *, history: Iterable[Envelope] = (), attempt: int = 1
    ) -> FakeStageContext:
        """The context a consumer builds for `event` (stored after `history`)."""
        return cls(event.job_id, stage, cause=event, attempt=attempt, history=history)

    # -- what the runtime's context does ---------------------------------------------------------------

    async def emit(self, event_cls: type[Envelope], data: BaseModel) -> int:
        event = self._make(event_cls, data)
        self.actions.append(f"emit {event.type}")
        return self._publish(event)

    async def progress(self, message: str) -> None:
        assert self.stage is not None, "progress needs a stage"
        self._step += 1
        self.actions.append(f"progress {message}")
        self._publish(
            self._make(StageProgressEvent, StageProgress(stage=self.stage, step=self._step, message=message))
        )

    async def delta(self, offset: int, text: str) -> None:
        self.deltas.append((offset, text))

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
        meter = self.meter(call, provider=provider, model=model)
        meter.add(input_tokens, output_tokens, images, calls)
        await meter.report()

    def meter(self, call: str, *, provider: str, model: str) -> Meter:
        assert self.stage is not None, "usage needs a stage"

        async def report(data: UsageRecorded) -> None:
            self.actions.append(f"usage {call}")
            self._publish(self._make(UsageRecordedEvent, data))

        # Reports only when the call ends (or when the handler asks): tests see each call's final totals.
        return Meter(report, stage=self.stage, call=call, provider=provider, model=model, interval=3600)

    async def ensure_active(self) -> None:
        self.actions.append("ensure_active")
        for event in self.history:
            if event.type in STOPPED_TYPES:
                raise JobStopped(f"the job is {event.type.removeprefix('job.')}")

    async def recorded(self, event_cls: type[Envelope], limit: int | None = None) -> list[Envelope]:
        return [e for e in self.history if isinstance(e, event_cls)][:limit]

    async def handled_before(self, event_cls: type[Envelope]) -> list[Envelope]:
        cause = self.cause.id if self.cause else None
        return [e for e in await self.recorded(event_cls) if e.causation_id == cause]

    async def republish_handled(self, event_cls: type[Envelope]) -> list[Envelope]:
        done = await self.handled_before(event_cls)
        for event in done:
            self.actions.append(f"republish {event.type}")
            self._publish(event)
        return done

    async def latest_blog(self) -> BlogCompletedEvent | BlogEditedEvent | None:
        texts = [e for e in self.history if isinstance(e, BlogCompletedEvent | BlogEditedEvent)]
        return max(texts, key=lambda e: (e.data.version, e.occurred_at), default=None)

    # -- what a test looks at --------------------------------------------------------------------------

    def emitted(self, event_cls: type[E]) -> list[E]:
        """The events of one type this handler published (republished ones included), in order."""
        return [e for e in self.published if isinstance(e, event_cls)]

    def data(self, event_cls: type[Envelope]) -> list[Any]:
        """The payloads of emitted(event_cls)."""
        return [e.data for e in self.emitted(event_cls)]

    @property
    def progress_messages(self) -> list[str]:
        return [e.data.message for e in self.emitted(StageProgressEvent)]

    @property
    def usage_calls(self) -> list[str]:
        return [e.data.call for e in self.emitted(UsageRecordedEvent)]

    @property
    def streamed(self) -> str:
        """The live text rebuilt from the deltas, as a watcher does: each piece goes at its offset, which
        is where the text so far ends, or earlier when the stage starts over (the text is cut there)."""
        text = ""
        for offset, piece in self.deltas:
            assert offset <= len(text), f"delta at {offset}, text so far is {len(text)} characters"
            text = text[:offset] + piece
        return text

    def _make(self, event_cls: type[Envelope], data: BaseModel) -> Envelope:
        causation_id = self.cause.id if self.cause else None
        return event_cls(
            job_id=self.job_id,
            producer=self.producer,
            causation_id=causation_id,
            attempt=self.attempt,
            data=data,
        )

    def _store(self, event: Envelope) -> int:
        keys = [e.dedup_key() for e in self.history]
        key = event.dedup_key()
        if key in keys:  # the stream drops a duplicate and answers with the original's sequence
            return keys.index(key) + 1
        self.history.append(event)
        return len(self.history)

    def _publish(self, event: Envelope) -> int:
        self.published.append(event)
        return self._store(event)


def _conforms(ctx: FakeStageContext) -> StageContext:
    return ctx  # mypy checks here that the fake has everything the protocol asks for
