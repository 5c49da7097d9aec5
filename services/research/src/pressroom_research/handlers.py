"""research — what it consumes → what it publishes:

    job.requested → research.completed   (sources and notes, or skipped with the reason)
                    stage.progress, usage.recorded (one per paid call) on the way

The logic is in researcher.py; a handler only reads the input, checks for an earlier result and emits.
"""

from __future__ import annotations

from pressroom_contracts.events import Envelope, JobRequestedEvent, ResearchCompletedEvent
from pressroom_runtime.stage import Handler, StageContext

from .researcher import Researcher


def handlers(researcher: Researcher) -> dict[type[Envelope], Handler]:
    async def on_job_requested(event: JobRequestedEvent, ctx: StageContext) -> None:
        if await ctx.republish_handled(ResearchCompletedEvent):
            return  # redelivered after a crash: the result is announced again, not paid for again
        await ctx.emit(ResearchCompletedEvent, await researcher.research(event.data.request, ctx))

    return {JobRequestedEvent: on_job_requested}
