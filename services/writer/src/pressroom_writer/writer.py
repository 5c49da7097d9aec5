"""Writes one blog post from research: streamed to the watchers as it comes, then cleaned and cited."""

from __future__ import annotations

from pressroom_contracts.events import BlogCompleted, ResearchCompleted, TokenUsage
from pressroom_runtime.llm import TextModel
from pressroom_runtime.stage import StageContext

from .drafting import draft
from .prompts import blog_prompt, title_for
from .writing import assemble, citations, limit_words, split_title, word_count

MAX_LENGTH_FACTOR = 2


class Writer:
    def __init__(self, model: TextModel, max_tokens: int) -> None:
        self.model = model
        self.max_tokens = max_tokens

    async def write(
        self, research: ResearchCompleted, ctx: StageContext, version: int, regenerated: bool
    ) -> BlogCompleted:
        request = research.request
        await ctx.ensure_active()
        await ctx.progress(f"Writing a {request.length} blog post with {self.model.model}")
        text, usage = await draft(
            self.model,
            blog_prompt(research),
            target_words=request.target_words,
            max_tokens=min(self.max_tokens, request.target_words * 2),
            on_piece=ctx.delta,
        )
        title, body = split_title(text, fallback=title_for(request.topic))
        # The token cap bounds the cost; this bounds what a reader gets: at most twice the target length.
        body = limit_words(body, MAX_LENGTH_FACTOR * request.target_words)
        body, cited = citations(body, research.sources)
        await ctx.usage(
            f"blog:{version}",
            provider="openai-compatible",
            model=usage.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
        )
        words = word_count(body)
        await ctx.progress(f"Blog post written: {words} words, {len(cited)} citations")
        return BlogCompleted(
            request=request,
            version=version,
            regenerated=regenerated,
            title=title,
            markdown=assemble(title, body, cited),
            word_count=words,
            citations=cited,
            usage=TokenUsage(
                model=usage.model, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens
            ),
        )
