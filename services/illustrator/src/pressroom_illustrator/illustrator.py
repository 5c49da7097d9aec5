"""Illustrates one blog post: the model writes an image prompt, a provider draws it, the pictures are
stored in the object store, and only then is the result returned to be announced.

The event comes last, so the database never has a row for an object that is not there.
"""

from __future__ import annotations

from pressroom_contracts.events import ImageCompleted, ImageVariant
from pressroom_contracts.voice import VoiceProfile
from pressroom_runtime.llm import TextModel, in_voice
from pressroom_runtime.objectstore import ObjectStore
from pressroom_runtime.stage import StageContext

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

    async def illustrate(
        self,
        ctx: StageContext,
        *,
        title: str,
        markdown: str,
        version: int,
        instructions: str | None = None,
        voice: VoiceProfile | None = None,
    ) -> ImageCompleted:
        await ctx.ensure_active()
        await ctx.progress("Imagining the illustration")
        answer = await self.model.complete(
            in_voice(image_prompt(title, markdown), voice), max_tokens=self.prompt_max_tokens
        )
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
        await ctx.progress(f"Illustration stored ({drawing.image.width}x{drawing.image.height})")
        return ImageCompleted(
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
        )
