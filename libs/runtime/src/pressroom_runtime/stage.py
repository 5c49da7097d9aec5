"""What a stage handler may do for the job it works on, with no broker in sight.

Handlers and the logic under them are written against `StageContext`: the runtime hands them the
NATS-backed one (consumer.py), tests a fake that records what they did (pressroom_testkit.FakeStageContext).
A service's `handlers.py` is a table, event type → handler, turned into one handler by `dispatch`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from pydantic import BaseModel

from pressroom_contracts.events import (
    BlogCompletedEvent,
    BlogEditedEvent,
    Envelope,
    JobRequested,
    JobRequestedEvent,
    Stage,
)
from pressroom_contracts.voice import VoiceProfile

from .usage import Meter


class StageContext(Protocol):
    @property
    def job_id(self) -> str: ...

    @property
    def stage(self) -> Stage | None: ...

    @property
    def attempt(self) -> int:
        """The delivery attempt of the input being handled (1 on the first)."""
        ...

    async def emit(self, event_cls: type[Envelope], data: BaseModel) -> int:
        """Publishes a stored event of this job, caused by the input; returns its stream sequence."""
        ...

    async def progress(self, message: str) -> None:
        """A stage.progress line for whoever watches the job."""
        ...

    async def delta(self, offset: int, text: str) -> None:
        """Live text at `offset` of what the stage is writing (not stored)."""
        ...

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
        """Records one provider call (`call` is unique within the job) and its estimated cost."""
        ...

    def meter(self, call: str, *, provider: str, model: str) -> Meter:
        """A provider call's running usage, reported while it runs (usage.py): `async with ctx.meter(…) as
        m:` around the call, `m.add(…)` as it goes, or pass it to TextModel.stream(meter=m)."""
        ...

    async def ensure_active(self) -> None:
        """Call before each provider call: raises JobStopped once the job was cancelled or failed."""
        ...

    async def recorded(self, event_cls: type[Envelope], limit: int | None = None) -> list[Envelope]:
        """What this job already has of one event type, oldest first (the first `limit` of them)."""
        ...

    async def handled_before(self, event_cls: type[Envelope]) -> list[Envelope]:
        """Events of one type this very input already produced (before a crash, say)."""
        ...

    async def republish_handled(self, event_cls: type[Envelope]) -> list[Envelope]:
        """What this input already produced, published again (the stream drops duplicates)."""
        ...

    async def latest_blog(self) -> BlogCompletedEvent | BlogEditedEvent | None:
        """The newest text of the job's post: written by the model or replaced by a person."""
        ...


# The event parameter is each handler's own event class: Any here, checked by `dispatch`'s table.
Handler = Callable[[Any, StageContext], Awaitable[None]]


def dispatch(table: Mapping[type[Envelope], Handler]) -> Handler:
    """One handler for a consumer that accepts every event type of `table` (its keys)."""

    async def handle(event: Envelope, ctx: StageContext) -> None:
        await table[type(event)](event, ctx)

    return handle


async def job_requested(ctx: StageContext) -> JobRequested | None:
    """What the job was started with (its owner's brand voice and link template included)."""
    found = [e for e in await ctx.recorded(JobRequestedEvent, limit=1) if isinstance(e, JobRequestedEvent)]
    return found[0].data if found else None


async def owner_voice(ctx: StageContext) -> VoiceProfile | None:
    """The brand voice of the job's owner, for every prompt of the job (None: no profile)."""
    requested = await job_requested(ctx)
    return requested.voice if requested else None
