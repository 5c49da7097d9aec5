"""illustrator — what it consumes → what it publishes:

    blog.completed (first written, image asked for)  → image.completed v1
    regenerate.requested (stage image)               → image.completed, the next version, drawn
                                                       from the latest blog text
                                                       stage.progress and usage.recorded on the way

The logic is in illustrator.py; a handler only reads the input and the job's history, and emits.
"""

from __future__ import annotations

from pressroom_contracts.events import (
    BlogCompletedEvent,
    Envelope,
    ImageCompletedEvent,
    RegenerateRequestedEvent,
    Stage,
)
from pressroom_runtime.errors import PermanentError
from pressroom_runtime.stage import Handler, StageContext, owner_voice

from .illustrator import Illustrator


def handlers(illustrator: Illustrator) -> dict[type[Envelope], Handler]:
    async def on_blog_completed(event: BlogCompletedEvent, ctx: StageContext) -> None:
        blog = event.data
        if blog.regenerated or not blog.request.image:
            return  # a regenerated blog does not redo the image; a job without an image has none
        if await ctx.republish_handled(ImageCompletedEvent):
            return  # drawn before a crash: announced again, not drawn again
        # The first image is version 1; regenerated ones count up from there.
        image = await illustrator.illustrate(
            ctx, title=blog.title, markdown=blog.markdown, version=1, voice=await owner_voice(ctx)
        )
        await ctx.emit(ImageCompletedEvent, image)

    async def on_regenerate_requested(event: RegenerateRequestedEvent, ctx: StageContext) -> None:
        if event.data.stage is not Stage.image or await ctx.republish_handled(ImageCompletedEvent):
            return
        blog = await ctx.latest_blog()
        if blog is None:
            raise PermanentError(
                "the image cannot be drawn before the blog post is written", code="not_ready"
            )
        image = await illustrator.illustrate(
            ctx,
            title=blog.data.title,
            markdown=blog.data.markdown,
            version=await next_version(ctx),
            instructions=event.data.instructions,
            voice=await owner_voice(ctx),
        )
        await ctx.emit(ImageCompletedEvent, image)

    return {
        BlogCompletedEvent: on_blog_completed,
        RegenerateRequestedEvent: on_regenerate_requested,
    }


async def next_version(ctx: StageContext) -> int:
    """After every image drawn, and after version 1 even while it is still being drawn: never over it."""
    versions = [e.data.version for e in await ctx.recorded(ImageCompletedEvent)]
    first_expected = any(
        isinstance(e, BlogCompletedEvent) and not e.data.regenerated and e.data.request.image
        for e in await ctx.recorded(BlogCompletedEvent)
    )
    return max([*versions, 1 if first_expected else 0]) + 1
