"""The embedded default: a cover card rendered with Pillow, 1200x630 for link previews plus a square."""

from __future__ import annotations

import asyncio

from pressroom_runtime.cpu import off_loop

from ..cover import HEIGHT, SQUARE, WIDTH, render_cover
from .base import Drawing, Picture


class CoverCardProvider:
    name = "cover-card"
    model = "pillow"
    description = "Drawing the cover card"

    async def draw(self, *, title: str, prompt: str, seed: str) -> Drawing:
        seed_text = f"{seed}:{prompt}"
        main, square = await asyncio.gather(
            off_loop(render_cover, title, seed_text, WIDTH, HEIGHT),
            off_loop(render_cover, title, seed_text, SQUARE, SQUARE),
        )
        return Drawing(
            image=Picture("main", main, WIDTH, HEIGHT),
            variants=[Picture("square", square, SQUARE, SQUARE)],
        )
