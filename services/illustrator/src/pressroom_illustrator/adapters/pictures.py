"""Pillow helpers shared by the providers: decode, normalise to PNG, derive the square variant."""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from pressroom_runtime.errors import TransientError

from .base import Picture

SQUARE_SIDE = 1080  # Instagram's square


def to_png(data: bytes, name: str = "main") -> Picture:
    """The provider's bytes as a PNG picture: kept byte for byte when they already are a PNG."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.format == "PNG":
                return Picture(name, data, image.width, image.height)
            return encode(image, name)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        # A garbled answer is worth another try; max_deliver bounds how many.
        raise TransientError(f"the image provider returned an unreadable image: {exc}") from exc


def encode(image: Image.Image, name: str) -> Picture:
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    buffer = io.BytesIO()
    # Not optimize=True: on a provider-sized picture it costs seconds of CPU for a few percent of bytes.
    image.save(buffer, format="PNG")
    return Picture(name, buffer.getvalue(), image.width, image.height)


def square_variant(picture: Picture, side: int = SQUARE_SIDE) -> Picture:
    """The centre square of `picture`, scaled down to at most `side` pixels (never up)."""
    with Image.open(io.BytesIO(picture.data)) as image:
        short = min(image.width, image.height)
        left, top = (image.width - short) // 2, (image.height - short) // 2
        square = image.crop((left, top, left + short, top + short))
        if short > side:
            square = square.resize((side, side), Image.Resampling.LANCZOS)
        return encode(square, "square")
