"""social — what it consumes → what it publishes:

    blog.completed (first written)        → social.completed v1, one per requested platform
    regenerate.requested (stage social)   → social.completed, the next version of that platform's
                                            post (or of every post), from the latest blog text
                                            stage.progress and usage.recorded on the way

The logic is in copywriter.py; a handler only reads the input and the job's history, and emits.
"""

from __future__ import annotations

from pressroom_contracts.events import (
    BlogCompletedEvent,
    Envelope,
    RegenerateRequestedEvent,
    SocialCompletedEvent,
    SocialEditedEvent,
    Stage,
)
from pressroom_contracts.jobs import Platform
from pressroom_runtime.errors import PermanentError
from pressroom_runtime.stage import Handler, StageContext

from .copywriter import Copywriter
from .prompts import Blog

FIRST_VERSION = 1


def handlers(copywriter: Copywriter) -> dict[type[Envelope], Handler]:
    async def on_blog_completed(event: BlogCompletedEvent, ctx: StageContext) -> None:
        if event.data.regenerated:
            return  # a blog written again on request does not redo the posts
        blog = Blog.of(event.data.request, event.data)
        # Posted before a crash: announced again (deduplicated), not paid for twice.
        done = {e.data.platform for e in await ctx.republish_handled(SocialCompletedEvent)}
        for platform in blog.request.platforms:
            if platform not in done:
                await ctx.emit(
                    SocialCompletedEvent, await copywriter.write(ctx, blog, platform, FIRST_VERSION)
                )

    async def on_regenerate_requested(event: RegenerateRequestedEvent, ctx: StageContext) -> None:
        if event.data.stage is not Stage.social:
            return
        done = {e.data.platform for e in await ctx.republish_handled(SocialCompletedEvent)}
        blog = await latest_blog(ctx)
        asked = [event.data.platform] if event.data.platform else list(blog.request.platforms)
        versions = await latest_versions(ctx)
        for platform in asked:
            if platform not in done:
                version = versions.get(platform, 0) + 1
                post = await copywriter.write(ctx, blog, platform, version, event.data.instructions)
                await ctx.emit(SocialCompletedEvent, post)

    return {
        BlogCompletedEvent: on_blog_completed,
        RegenerateRequestedEvent: on_regenerate_requested,
    }


async def latest_blog(ctx: StageContext) -> Blog:
    """The newest blog text (a person's edit included), with the request of the first one written."""
    latest = await ctx.latest_blog()
    completed = [e for e in await ctx.recorded(BlogCompletedEvent) if isinstance(e, BlogCompletedEvent)]
    if latest is None or not completed:
        raise PermanentError("the posts cannot be written again before the blog is", code="not_ready")
    return Blog.of(completed[0].data.request, latest.data)


async def latest_versions(ctx: StageContext) -> dict[Platform, int]:
    versions: dict[Platform, int] = {}
    for cls in (SocialCompletedEvent, SocialEditedEvent):
        for e in await ctx.recorded(cls):
            if isinstance(e, SocialCompletedEvent | SocialEditedEvent):
                versions[e.data.platform] = max(versions.get(e.data.platform, 0), e.data.version)
    return versions
