"""The embedded image provider: a cover card composed from the post (title, palette, shapes).

Deterministic for a given post, so a redelivered job renders the same bytes and the same checksum.
"""

from __future__ import annotations

import hashlib
import io
import random
import textwrap

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 1200, 630  # the size link previews use


def _palette(rng: random.Random) -> list[tuple[int, int, int]]:
    base = rng.random()
    colours = []
    for shift in (0.0, 0.08, 0.5, 0.58):
        hue = (base + shift) % 1.0
        colours.append(_hsv(hue, 0.55 + rng.random() * 0.3, 0.45 + rng.random() * 0.4))
    return colours


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return int(r * 255), int(g * 255), int(b * 255)


def render_cover(title: str, seed_text: str, width: int = WIDTH, height: int = HEIGHT) -> bytes:
    """A PNG: a two-tone background, translucent shapes seeded by the post, and the wrapped title."""
    rng = random.Random(hashlib.sha256(seed_text.encode()).digest())
    background, accent, shape_a, shape_b = _palette(rng)
    image = Image.new("RGB", (width, height), background)
    overlay = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for _ in range(7):
        colour = rng.choice([accent, shape_a, shape_b])
        x, y = rng.randrange(width), rng.randrange(height)
        radius = rng.randrange(height // 6, height // 2)
        box = (x - radius, y - radius, x + radius, y + radius)
        if rng.random() < 0.5:
            draw.ellipse(box, fill=(*colour, 110))
        else:
            draw.rectangle(box, fill=(*colour, 90))
    image.paste(overlay, mask=overlay)
    text_layer = ImageDraw.Draw(image)
    font_size = max(28, height // 10)
    font = ImageFont.load_default(size=font_size)
    lines = textwrap.wrap(title, width=max(12, width // (height // 18)))[:4]
    line_height = int(font_size * 1.25)
    top = (height - line_height * len(lines)) // 2
    band = (int(width * 0.06), top - 30, int(width * 0.94), top + line_height * len(lines) + 30)
    text_layer.rounded_rectangle(band, radius=24, fill=(15, 15, 20))
    for n, line in enumerate(lines):
        text_layer.text((int(width * 0.1), top + n * line_height), line, font=font, fill=(250, 250, 250))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
