"""What every image provider does: turn a prompt (and the post's title) into PNGs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

PNG = "image/png"


@dataclass(frozen=True)
class Picture:
    """One encoded image: the main illustration (name "main") or a variant such as "square"."""

    name: str
    data: bytes
    width: int
    height: int
    content_type: str = PNG


@dataclass(frozen=True)
class Drawing:
    image: Picture
    variants: list[Picture] = field(default_factory=list)
    # Tokens some providers report for the call (gpt-image-1 does); images are always one per drawing.
    input_tokens: int = 0
    output_tokens: int = 0


class ImageProvider(Protocol):
    name: str  # recorded as the event's and the usage's provider, e.g. "openai" or "cover-card"
    model: str  # recorded in usage.recorded; the price table knows dall-e-3 and gpt-image-1

    @property
    def description(self) -> str:
        """A progress message for the client, e.g. "Drawing the cover card"."""
        ...

    async def draw(self, *, title: str, prompt: str, seed: str) -> Drawing:
        """`seed` is stable for one job and version, so a provider that can be deterministic is."""
        ...
