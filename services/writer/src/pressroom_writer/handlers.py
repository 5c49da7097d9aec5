"""writer: research.completed → live.<job>.blog.delta (while writing) → blog.completed."""

from __future__ import annotations

from pressroom_contracts.events import (
    BlogCompleted,
    BlogCompletedEvent,
    ResearchCompletedEvent,
    TokenUsage,
)
from pressroom_runtime.consumer import StageContext
from pressroom_runtime.llm import TextModel

from .drafting import draft
from .prompts import blog_prompt, title_for
from .writing import assemble, citations, split_title, word_count


class Writer:
    def __init__(self, model: TextModel, max_tokens: int) -> None:
        self.model = model
        self.max_tokens = max_tokens

    async def on_research(self, event: ResearchCompletedEvent, ctx: StageContext) -> None:
        done = await ctx.recorded(BlogCompletedEvent)
        if done:  # written before a crash: publish again (deduplicated), do not pay twice
            await ctx.publisher.publish(done[0])
            return
        research = event.data
        request = research.request
        await ctx.progress(f"Writing a {request.length} blog post with {self.model.model}")
        text, usage = await draft(
            self.model,
            blog_prompt(research),
            target_words=request.target_words,
            max_tokens=min(self.max_tokens, request.target_words * 2),
            on_piece=ctx.delta,
        )
        title, body = split_title(text, fallback=title_for(request.topic))
        body, cited = citations(body, research.sources)
        markdown = assemble(title, body, cited)
        await ctx.usage(
            "blog:1",
            provider="openai-compatible",
            model=usage.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
        )
        words = word_count(body)
        await ctx.emit(
            BlogCompletedEvent,
            BlogCompleted(
                request=request,
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
