"""social — what it consumes → what it publishes:

    blog.completed (first written)        → social.completed v1, one per requested platform
    regenerate.requested (stage social)   → social.completed, the next version of that platform's
                                            post (or of every post), from the latest blog text
                                            stage.progress and usage.recorded on the way

The logic is in copywriter.py; a handler only reads the input and the job's history, and emits.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from pressroom_contracts.events import (
    BlogCompleted,
    BlogCompletedEvent,
    Envelope,
    RegenerateRequestedEvent,
    SocialCompletedEvent,
    SocialEditedEvent,
    Stage,
)
from pressroom_contracts.jobs import Platform
from pressroom_contracts.voice import fill_link
from pressroom_runtime.errors import PermanentError
from pressroom_runtime.stage import Handler, StageContext, job_requested

from .copywriter import Copywriter
from .prompts import Blog

FIRST_VERSION = 1


def handlers(copywriter: Copywriter) -> dict[type[Envelope], Handler]:
    async def on_blog_completed(event: BlogCompletedEvent, ctx: StageContext) -> None:
        if event.data.regenerated:
            return  # a blog written again on request does not redo the posts
        # Posted before a crash: announced again (deduplicated), not paid for twice. Both reads at once.
        blog, handled = await asyncio.gather(
            with_owner(ctx, Blog.of(event.data.request, event.data), event.data),
            ctx.republish_handled(SocialCompletedEvent),
        )
        done = {e.data.platform for e in handled}
        todo = {platform: FIRST_VERSION for platform in blog.request.platforms if platform not in done}
        await write_all(copywriter, ctx, blog, todo)

    async def on_regenerate_requested(event: RegenerateRequestedEvent, ctx: StageContext) -> None:
        if event.data.stage is not Stage.social:
            return
        done = {e.data.platform for e in await ctx.republish_handled(SocialCompletedEvent)}
        blog = await latest_blog(ctx)
        asked = [event.data.platform] if event.data.platform else list(blog.request.platforms)
        versions = await latest_versions(ctx)
        todo = {platform: versions.get(platform, 0) + 1 for platform in asked if platform not in done}
        await write_all(copywriter, ctx, blog, todo, event.data.instructions)

    return {
        BlogCompletedEvent: on_blog_completed,
        RegenerateRequestedEvent: on_regenerate_requested,
    }


async def write_all(
    copywriter: Copywriter,
    ctx: StageContext,
    blog: Blog,
    versions: dict[Platform, int],
    instructions: str | None = None,
) -> None:
    """Every platform's post at once (each has its own model calls), each announced as soon as it is
    written. A failure cancels the others and is raised as itself, for the delivery policy to judge; what
    was announced before it is republished, not rewritten, when the message comes back."""

    async def one(platform: Platform, version: int) -> None:
        post = await copywriter.write(ctx, blog, platform, version, instructions)
        await ctx.emit(SocialCompletedEvent, post)

    try:
        async with asyncio.TaskGroup() as group:
            for platform, version in versions.items():
                group.create_task(one(platform, version))
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None


async def latest_blog(ctx: StageContext) -> Blog:
    """The newest blog text (a person's edit included), with the request of the first one written."""
    latest = await ctx.latest_blog()
    completed = [e for e in await ctx.recorded(BlogCompletedEvent) if isinstance(e, BlogCompletedEvent)]
    if latest is None or not completed:
        raise PermanentError("the posts cannot be written again before the blog is", code="not_ready")
    return await with_owner(ctx, Blog.of(completed[0].data.request, latest.data), completed[-1].data)


async def with_owner(ctx: StageContext, blog: Blog, written: BlogCompleted) -> Blog:
    """`blog` with its owner's brand voice, and its public address when the owner has a link template
    (the slug is the one the writer gave the post)."""
    requested = await job_requested(ctx)
    if requested is None:
        return blog
    template, slug = requested.link_template, written.seo.slug if written.seo else None
    link = fill_link(template, slug) if template and slug else None
    return replace(blog, voice=requested.voice, link=link)


async def latest_versions(ctx: StageContext) -> dict[Platform, int]:
    versions: dict[Platform, int] = {}
    for cls in (SocialCompletedEvent, SocialEditedEvent):
        for e in await ctx.recorded(cls):
            if isinstance(e, SocialCompletedEvent | SocialEditedEvent):
                versions[e.data.platform] = max(versions.get(e.data.platform, 0), e.data.version)
    return versions
