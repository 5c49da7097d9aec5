"""writer — what it consumes → what it publishes:

    research.completed                   → live.<job>.blog.delta (as it writes), blog.completed v1
    regenerate.requested (stage blog)    → blog.completed, the next version, from the same research
                                           stage.progress and usage.recorded on the way

The logic is in writer.py; a handler only reads the input and the job's history, and emits.
"""

from __future__ import annotations

import asyncio

from pressroom_contracts.events import (
    BlogCompletedEvent,
    BlogEditedEvent,
    Envelope,
    RegenerateRequestedEvent,
    ResearchCompletedEvent,
    Stage,
)
from pressroom_runtime.errors import PermanentError
from pressroom_runtime.stage import Handler, StageContext, owner_voice

from .writer import Writer


def handlers(writer: Writer) -> dict[type[Envelope], Handler]:
    async def on_research_completed(event: ResearchCompletedEvent, ctx: StageContext) -> None:
        handled, voice = await asyncio.gather(ctx.republish_handled(BlogCompletedEvent), owner_voice(ctx))
        if handled:
            return  # redelivered after a crash: announced again, not written again
        await ctx.emit(
            BlogCompletedEvent, await writer.write(event.data, ctx, 1, regenerated=False, voice=voice)
        )

    async def on_regenerate_requested(event: RegenerateRequestedEvent, ctx: StageContext) -> None:
        if event.data.stage is not Stage.blog or await ctx.republish_handled(BlogCompletedEvent):
            return
        research = await ctx.recorded(ResearchCompletedEvent)
        if not research:
            raise PermanentError(
                "the blog cannot be written again before research completed", code="not_ready"
            )
        versions = [e.data.version for e in await ctx.recorded(BlogCompletedEvent)]
        versions += [e.data.version for e in await ctx.recorded(BlogEditedEvent)]
        blog = await writer.write(
            research[-1].data, ctx, version=max(versions, default=0) + 1, regenerated=True
        )
        await ctx.emit(BlogCompletedEvent, blog)

    return {
        ResearchCompletedEvent: on_research_completed,
        RegenerateRequestedEvent: on_regenerate_requested,
    }
