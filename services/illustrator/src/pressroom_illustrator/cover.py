"""The embedded image provider: a cover card composed from the post (title, palette, shapes).

Deterministic for a given post, so a redelivered job renders the same bytes and the same checksum.
"""

from __future__ import annotations

import hashlib
import io
import random

from PIL import Image, ImageDraw, ImageFont
from PIL.ImageFont import FreeTypeFont

WIDTH, HEIGHT = 1200, 630  # the size link previews use
SQUARE = 1080  # the square variant (Instagram, avatars, grids)


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


MAX_LINES = 5


def _wrap(words: list[str], font: FreeTypeFont, max_width: int) -> list[str]:
    lines: list[str] = []
    for word in words:
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and font.getlength(candidate) <= max_width:
            lines[-1] = candidate
        else:
            lines.append(word)
    return lines


def _fit_title(title: str, max_width: int, height: int) -> tuple[FreeTypeFont, list[str]]:
    """The largest font (from height/10 down) at which the title fits in MAX_LINES lines of max_width;
    at the smallest size, the lines that fit, the last one ending in an ellipsis."""
    words = title.split() or ["Untitled"]
    size = max(28, height // 10)
    while True:
        font = ImageFont.load_default(size=size)
        assert isinstance(font, FreeTypeFont)  # Pillow ≥ 10.1 ships a scalable default font
        lines = _wrap(words, font, max_width)
        fits = len(lines) <= MAX_LINES and all(font.getlength(line) <= max_width for line in lines)
        if fits or size <= 28:
            break
        size -= 4
    if len(lines) > MAX_LINES:
        last = lines[MAX_LINES - 1]
        while last and font.getlength(last + " …") > max_width:
            last = last.rsplit(" ", 1)[0] if " " in last else last[:-1]
        lines = [*lines[: MAX_LINES - 1], f"{last} …"]
    return font, [_clip(line, font, max_width) for line in lines]


def _clip(line: str, font: FreeTypeFont, max_width: int) -> str:
    """A single word longer than the band: cut it with an ellipsis rather than overflow."""
    if font.getlength(line) <= max_width:
        return line
    while len(line) > 1 and font.getlength(line + "…") > max_width:
        line = line[:-1]
    return line + "…"


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
    text_width = int(width * 0.8)  # inside the band, with a margin of 0.04 of the width each side
    font, lines = _fit_title(title, text_width, height)
    line_height = int(font.size * 1.25)
    top = (height - line_height * len(lines)) // 2
    band = (int(width * 0.06), top - 30, int(width * 0.94), top + line_height * len(lines) + 30)
    text_layer.rounded_rectangle(band, radius=24, fill=(15, 15, 20))
    for n, line in enumerate(lines):
        text_layer.text((int(width * 0.1), top + n * line_height), line, font=font, fill=(250, 250, 250))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")  # optimize=True would add half the render's CPU for ~7% of bytes
    return buffer.getvalue()
