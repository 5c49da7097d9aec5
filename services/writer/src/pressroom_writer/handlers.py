"""writer: research.completed → live.<job>.blog.delta (while writing) → blog.completed.
regenerate.requested (stage blog) → a new version of the blog from the same research."""

from __future__ import annotations

from pressroom_contracts.events import (
    BlogCompleted,
    BlogCompletedEvent,
    BlogEditedEvent,
    RegenerateRequestedEvent,
    ResearchCompleted,
    ResearchCompletedEvent,
    Stage,
    TokenUsage,
)
from pressroom_runtime.consumer import StageContext
from pressroom_runtime.errors import PermanentError
from pressroom_runtime.llm import TextModel

from .drafting import draft
from .prompts import blog_prompt, title_for
from .writing import assemble, citations, limit_words, split_title, word_count

MAX_LENGTH_FACTOR = 2


class Writer:
    def __init__(self, model: TextModel, max_tokens: int) -> None:
        self.model = model
        self.max_tokens = max_tokens

    async def on_event(
        self, event: ResearchCompletedEvent | RegenerateRequestedEvent, ctx: StageContext
    ) -> None:
        if isinstance(event, ResearchCompletedEvent):
            await self.on_research(event, ctx)
        elif event.data.stage is Stage.blog:
            await self.on_regenerate(event, ctx)

    async def on_research(self, event: ResearchCompletedEvent, ctx: StageContext) -> None:
        if await ctx.republish_handled(BlogCompletedEvent):
            return
        await self.write(event.data, ctx, version=1, regenerated=False)

    async def on_regenerate(self, event: RegenerateRequestedEvent, ctx: StageContext) -> None:
        if await ctx.republish_handled(BlogCompletedEvent):
            return
        research = await ctx.recorded(ResearchCompletedEvent)
        if not research:
            raise PermanentError(
                "the blog cannot be written again before research completed", code="not_ready"
            )
        versions = [e.data.version for e in await ctx.recorded(BlogCompletedEvent)]
        versions += [e.data.version for e in await ctx.recorded(BlogEditedEvent)]
        await self.write(research[-1].data, ctx, version=max(versions, default=0) + 1, regenerated=True)

    async def write(
        self, research: ResearchCompleted, ctx: StageContext, version: int, regenerated: bool
    ) -> None:
        request = research.request
        await ctx.ensure_active()
        await ctx.progress(f"Writing a {request.length} blog post with {self.model.model}")
        # Metered as it streams: a crash mid-post leaves what was written so far on the bill.
        async with ctx.meter(
            f"blog:{version}", provider="openai-compatible", model=self.model.model
        ) as meter:
            text, usage = await draft(
                self.model,
                blog_prompt(research),
                target_words=request.target_words,
                max_tokens=min(self.max_tokens, request.target_words * 2),
                on_piece=ctx.delta,
                meter=meter,
            )
        title, body = split_title(text, fallback=title_for(request.topic))
        # The token cap bounds the cost; this bounds what a reader gets: at most twice the target length.
        body = limit_words(body, MAX_LENGTH_FACTOR * request.target_words)
        body, cited = citations(body, research.sources)
        markdown = assemble(title, body, cited)
        words = word_count(body)
        await ctx.emit(
            BlogCompletedEvent,
            BlogCompleted(
                request=request,
                version=version,
                regenerated=regenerated,
                title=title,
                markdown=markdown,
                word_count=words,
                citations=cited,
                usage=TokenUsage(
                    model=usage.model, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens
                ),
            ),
        )
        await ctx.progress(f"Blog post written: {words} words, {len(cited)} citations")
