"""Each platform's real limits and how it counts characters."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from pressroom_contracts.jobs import Platform

# Where the post's link goes; the link is added when the post is published.
LINK_PLACEHOLDER = "{link}"
_URL = re.compile(r"https?://\S+|\{link\}")
X_URL_LENGTH = 23  # X shortens every link to t.co: it always counts 23


@dataclass(frozen=True)
class PlatformRules:
    limit: int
    hashtags: int  # how many hashtags suit the platform
    style: str


RULES: dict[Platform, PlatformRules] = {
    Platform.x: PlatformRules(280, 2, "punchy, one or two short sentences"),
    Platform.linkedin: PlatformRules(
        3000, 3, "professional, a hook line, short paragraphs, a question at the end"
    ),
    Platform.threads: PlatformRules(500, 2, "conversational and brief"),
    Platform.facebook: PlatformRules(63206, 2, "friendly, two or three short paragraphs"),
    Platform.instagram: PlatformRules(2200, 5, "vivid caption, emojis welcome, hashtags at the end"),
}


def _x_weight(char: str) -> int:
    # X counts most Latin, punctuation and symbols as 1 and CJK, emoji and others as 2.
    code = ord(char)
    if code <= 0x10FF or 0x2000 <= code <= 0x200D or 0x2010 <= code <= 0x201F or 0x2032 <= code <= 0x2037:
        return 1
    return 2


def count(platform: Platform, text: str) -> int:
    """Length of `text` as the platform counts it."""
    text = unicodedata.normalize("NFC", text)
    if platform is not Platform.x:
        return len(text)
    total, position = 0, 0
    for match in _URL.finditer(text):
        total += sum(_x_weight(c) for c in text[position : match.start()]) + X_URL_LENGTH
        position = match.end()
    return total + sum(_x_weight(c) for c in text[position:])


def fit(platform: Platform, text: str, limit: int | None = None) -> str:
    """Shortens `text` at a word boundary, with an ellipsis, until it fits `limit` (the platform's)."""
    limit = RULES[platform].limit if limit is None else limit
    text = text.strip()
    if count(platform, text) <= limit:
        return text
    # Every character counts at least 1, so nothing past `limit` characters can stay: cut there first.
    words = text[:limit].split(" ")
    while words and count(platform, " ".join(words) + "…") > limit:
        words.pop()
    shortened = " ".join(words).rstrip(" ,;:-") + "…"
    while shortened != "…" and count(platform, shortened) > limit:  # a single enormous word
        shortened = shortened[:-2] + "…"
    return shortened if count(platform, shortened) <= limit else ""
