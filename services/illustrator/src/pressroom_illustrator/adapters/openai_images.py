"""OpenAI images (dall-e-3, gpt-image-1) through the `openai` SDK, answered as base64 PNG."""

from __future__ import annotations

import asyncio
import base64
import binascii

from openai import AsyncOpenAI, omit

from pressroom_runtime.errors import TransientError
from pressroom_runtime.logs import get_logger

from .base import Drawing
from .pictures import square_variant, to_png

log = get_logger(__name__)

OPENAI_API = "https://api.openai.com/v1"

# Sizes each model family accepts; another size would be refused with a 400 after the job waited.
_SIZES: dict[str, tuple[str, ...]] = {
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
    "gpt-image": ("1024x1024", "1536x1024", "1024x1536", "auto"),
}
# Longest prompt each family takes (characters).
_PROMPT_LIMITS = {"dall-e-3": 4000, "dall-e-2": 1000, "gpt-image": 32000}


def _family(model: str) -> str | None:
    return next((family for family in _SIZES if model.startswith(family)), None)


def _ratio(size: str) -> float:
    width, _, height = size.partition("x")
    return int(width) / int(height)


def fit_size(model: str, size: str) -> str:
    """`size` when the model accepts it, else the accepted size closest in aspect ratio."""
    family = _family(model)
    if family is None or size in _SIZES[family]:
        return size
    sizes = [s for s in _SIZES[family] if s != "auto"]
    try:
        wanted = _ratio(size)
    except (ValueError, ZeroDivisionError):
        wanted = 1.0
    return min(sizes, key=lambda s: abs(_ratio(s) - wanted))


class OpenAIImageProvider:
    name = "openai"

    def __init__(self, client: AsyncOpenAI, model: str = "dall-e-3", size: str = "1792x1024") -> None:
        self.client = client
        self.model = model
        self.size = fit_size(model, size)
        if self.size != size:
            log.warning("image size not offered by the model: using the closest", model=model,
                        configured=size, using=self.size)  # fmt: skip

    @classmethod
    def create(
        cls, api_key: str, base_url: str | None, model: str, size: str, timeout: float
    ) -> OpenAIImageProvider:
        # An explicit base URL: the SDK would otherwise read OPENAI_BASE_URL, which may name a text-only
        # server (vLLM, llama.cpp) that has no images endpoint.
        client = AsyncOpenAI(api_key=api_key, base_url=base_url or OPENAI_API, timeout=timeout, max_retries=1)
        return cls(client, model=model, size=size)

    @property
    def description(self) -> str:
        return f"Generating the illustration with {self.model}"

    async def draw(self, *, title: str, prompt: str, seed: str) -> Drawing:
        family = _family(self.model)
        limit = _PROMPT_LIMITS.get(family or "", 4000)
        # gpt-image-* always answers base64 and refuses response_format; dall-e-* answers URLs unless asked.
        response = await self.client.images.generate(
            model=self.model,
            prompt=prompt[:limit],
            size=self.size,
            n=1,
            response_format=omit if family == "gpt-image" else "b64_json",
        )
        encoded = response.data[0].b64_json if response.data else None
        if not encoded:
            raise TransientError("the image provider answered without an image", code="provider_no_image")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise TransientError(f"the image provider's base64 is invalid: {exc}") from exc
        image = await asyncio.to_thread(to_png, data)
        square = await asyncio.to_thread(square_variant, image)
        usage = response.usage
        return Drawing(
            image=image,
            variants=[square],
            input_tokens=(usage.input_tokens if usage else 0) or 0,
            output_tokens=(usage.output_tokens if usage else 0) or 0,
        )
