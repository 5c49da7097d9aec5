"""social: blog.completed → social.completed, one per requested platform."""

from __future__ import annotations

from pressroom_contracts.events import (
    BlogCompletedEvent,
    RegenerateRequestedEvent,
    SocialCompleted,
    SocialCompletedEvent,
)
from pressroom_runtime.consumer import StageContext
from pressroom_runtime.llm import TextModel

from .platforms import RULES, count
from .posts import compose
from .prompts import post_prompt


class Social:
    def __init__(self, model: TextModel, max_tokens: int) -> None:
        self.model = model
        self.max_tokens = max_tokens

    async def on_blog(self, event: BlogCompletedEvent | RegenerateRequestedEvent, ctx: StageContext) -> None:
        if not isinstance(event, BlogCompletedEvent) or event.data.regenerated:
            return  # regenerate requests: not yet; a regenerated blog does not redo the others
        blog = event.data
        done = {
            e.data.platform: e
            for e in await ctx.recorded(SocialCompletedEvent)
            if e.data.version == blog.version
        }
        for platform in blog.request.platforms:
            if platform in done:  # posted before a crash: publish again (deduplicated), do not pay twice
                await ctx.publisher.publish(done[platform])
                continue
            await ctx.progress(f"Writing the {platform} post")
            answer = await self.model.complete(post_prompt(blog, platform), max_tokens=self.max_tokens)
            text = compose(platform, answer.text, blog.request.topic)
            await ctx.usage(
                f"social:{platform}:{blog.version}",
                provider="openai-compatible",
                model=answer.usage.model,
                input_tokens=answer.usage.input_tokens,
                output_tokens=answer.usage.output_tokens,
            )
            await ctx.emit(
                SocialCompletedEvent,
                SocialCompleted(
                    platform=platform,
                    version=blog.version,
                    text=text,
                    characters=count(platform, text),
                    limit=RULES[platform].limit,
                ),
            )
