"""illustrator: blog.completed → image.completed (the picture stored in the object store first)."""

from __future__ import annotations

from pressroom_contracts.events import (
    BlogCompletedEvent,
    ImageCompleted,
    ImageCompletedEvent,
    RegenerateRequestedEvent,
)
from pressroom_runtime.consumer import StageContext
from pressroom_runtime.llm import TextModel
from pressroom_runtime.objectstore import ObjectStore

from .cover import HEIGHT, WIDTH, render_cover
from .prompts import image_prompt


def object_key(job_id: str, version: int) -> str:
    return f"jobs/{job_id}/cover-v{version}.png"


class Illustrator:
    def __init__(self, model: TextModel, store: ObjectStore, prompt_max_tokens: int) -> None:
        self.model = model
        self.store = store
        self.prompt_max_tokens = prompt_max_tokens

    async def on_blog(self, event: BlogCompletedEvent | RegenerateRequestedEvent, ctx: StageContext) -> None:
        if not isinstance(event, BlogCompletedEvent) or event.data.regenerated:
            return  # regenerate requests: not yet; a regenerated blog does not redo the others
        blog = event.data
        if not blog.request.image:
            return
        done = [e for e in await ctx.recorded(ImageCompletedEvent) if e.data.version == blog.version]
        if done:  # drawn before a crash: publish again (deduplicated), do not pay twice
            await ctx.publisher.publish(done[0])
            return
        await ctx.progress("Imagining the illustration")
        answer = await self.model.complete(image_prompt(blog), max_tokens=self.prompt_max_tokens)
        prompt = " ".join(answer.text.split()) or f"An illustration for {blog.title}"
        await ctx.usage(
            f"image-prompt:{blog.version}",
            provider="openai-compatible",
            model=answer.usage.model,
            input_tokens=answer.usage.input_tokens,
            output_tokens=answer.usage.output_tokens,
        )
        await ctx.progress("Drawing the cover card")
        png = render_cover(blog.title, seed_text=f"{ctx.job_id}:{blog.version}:{prompt}")
        # Upload first: the event (and so the database row) only ever points at a stored object.
        stored = await self.store.put(object_key(ctx.job_id, blog.version), png, "image/png")
        await ctx.usage(f"image:{blog.version}", provider="cover-card", model="pillow", images=1)
        await ctx.emit(
            ImageCompletedEvent,
            ImageCompleted(
                version=blog.version,
                object_key=stored.key,
                prompt=prompt,
                width=WIDTH,
                height=HEIGHT,
                content_type=stored.content_type,
                sha256=stored.sha256,
                size_bytes=stored.size_bytes,
                provider="cover-card",
            ),
        )
