"""illustrator: blog.completed → image.completed; regenerate.requested (stage image) → a new version.

The picture and its variants are stored in the object store first; the event comes last, so the
database never has a row for an object that is not there.
"""

from __future__ import annotations

from pressroom_contracts.events import (
    BlogCompletedEvent,
    ImageCompleted,
    ImageCompletedEvent,
    ImageVariant,
    RegenerateRequestedEvent,
    Stage,
)
from pressroom_runtime.consumer import StageContext
from pressroom_runtime.errors import PermanentError
from pressroom_runtime.llm import TextModel
from pressroom_runtime.objectstore import ObjectStore

from .adapters import ImageProvider
from .prompts import final_prompt, image_prompt
from .storage import object_key, upload


class Illustrator:
    def __init__(
        self, model: TextModel, store: ObjectStore, images: ImageProvider, prompt_max_tokens: int
    ) -> None:
        self.model = model
        self.store = store
        self.images = images
        self.prompt_max_tokens = prompt_max_tokens

    async def on_event(self, event: BlogCompletedEvent | RegenerateRequestedEvent, ctx: StageContext) -> None:
        if isinstance(event, BlogCompletedEvent):
            await self.on_blog(event, ctx)
        elif event.data.stage is Stage.image:
            await self.on_regenerate(event, ctx)

    async def on_blog(self, event: BlogCompletedEvent, ctx: StageContext) -> None:
        blog = event.data
        if blog.regenerated or not blog.request.image:
            return  # a regenerated blog does not redo the image; a job without an image has none
        if await ctx.republish_handled(ImageCompletedEvent):
            return
        # The first image is version 1; regenerated ones count up from there.
        await self.illustrate(ctx, title=blog.title, markdown=blog.markdown, version=1)

    async def on_regenerate(self, event: RegenerateRequestedEvent, ctx: StageContext) -> None:
        if await ctx.republish_handled(ImageCompletedEvent):
            return
        blog = await ctx.latest_blog()
        if blog is None:
            raise PermanentError(
                "the image cannot be drawn before the blog post is written", code="not_ready"
            )
        versions = [e.data.version for e in await ctx.recorded(ImageCompletedEvent)]
        # Version 1 belongs to the first image even while it is still being drawn: never draw over it.
        written = await ctx.recorded(BlogCompletedEvent)
        first_expected = any(
            isinstance(e, BlogCompletedEvent) and not e.data.regenerated and e.data.request.image
            for e in written
        )
        version = max([*versions, 1 if first_expected else 0]) + 1
        title, markdown = blog.data.title, blog.data.markdown
        await self.illustrate(
            ctx, title=title, markdown=markdown, version=version, instructions=event.data.instructions
        )

    async def illustrate(
        self, ctx: StageContext, *, title: str, markdown: str, version: int, instructions: str | None = None
    ) -> None:
        await ctx.ensure_active()
        await ctx.progress("Imagining the illustration")
        answer = await self.model.complete(image_prompt(title, markdown), max_tokens=self.prompt_max_tokens)
        # Calls are named per attempt: a retry pays again, and each payment is counted once.
        await ctx.usage(
            f"image-prompt:v{version}:a{ctx.attempt}",
            provider="openai-compatible",
            model=answer.usage.model,
            input_tokens=answer.usage.input_tokens,
            output_tokens=answer.usage.output_tokens,
        )
        prompt = final_prompt(answer.text, title, instructions)

        await ctx.ensure_active()
        await ctx.progress(self.images.description)
        drawing = await self.images.draw(title=title, prompt=prompt, seed=f"{ctx.job_id}:v{version}")
        await ctx.usage(
            f"image:v{version}:a{ctx.attempt}",
            provider=self.images.name,
            model=self.images.model,
            input_tokens=drawing.input_tokens,
            output_tokens=drawing.output_tokens,
            images=1,
        )

        # Every object first, the event last: a failed upload raises here and nothing points at it.
        # Objects that were stored before the failure are removed by the orphan sweep.
        main = await upload(self.store, object_key(ctx.job_id, version), drawing.image)
        variants = []
        for picture in drawing.variants:
            stored = await upload(self.store, object_key(ctx.job_id, version, picture.name), picture)
            variants.append(
                ImageVariant(
                    name=picture.name,
                    object_key=stored.key,
                    width=picture.width,
                    height=picture.height,
                    sha256=stored.sha256,
                    size_bytes=stored.size_bytes,
                )
            )
        await ctx.emit(
            ImageCompletedEvent,
            ImageCompleted(
                version=version,
                object_key=main.key,
                prompt=prompt,
                width=drawing.image.width,
                height=drawing.image.height,
                content_type=main.content_type,
                sha256=main.sha256,
                size_bytes=main.size_bytes,
                provider=self.images.name,
                variants=variants,
            ),
        )
        await ctx.progress(f"Illustration stored ({drawing.image.width}x{drawing.image.height})")
