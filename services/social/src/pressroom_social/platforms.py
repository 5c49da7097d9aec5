"""Each platform's style for the model; the last-resort cut; the final check. How a platform counts
length, and its limit, are in pressroom_contracts.platforms.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from pressroom_contracts.jobs import Platform
from pressroom_contracts.platforms import LIMITS, count
from pressroom_runtime.errors import PermanentError

ELLIPSIS = "…"


@dataclass(frozen=True)
class PlatformRules:
    name: str
    limit: int
    hashtags: int  # how many hashtags suit the platform
    target: int  # a good length, in characters, to ask the model for
    style: str


RULES: dict[Platform, PlatformRules] = {
    Platform.x: PlatformRules("X", LIMITS[Platform.x], 2, 240, "punchy, one or two short sentences"),
    Platform.linkedin: PlatformRules(
        "LinkedIn",
        LIMITS[Platform.linkedin],
        3,
        1300,
        "professional, a hook line, short paragraphs, a question at the end",
    ),
    Platform.threads: PlatformRules("Threads", LIMITS[Platform.threads], 2, 400, "conversational and brief"),
    Platform.facebook: PlatformRules(
        "Facebook", LIMITS[Platform.facebook], 2, 600, "friendly, two or three short paragraphs"
    ),
    Platform.instagram: PlatformRules(
        "Instagram", LIMITS[Platform.instagram], 5, 900, "vivid caption, emojis welcome, hashtags at the end"
    ),
}


class PostOverLimit(PermanentError):
    """A post about to be published over its platform's limit: a bug here, never sent out."""

    code = "post_over_limit"


# ---- cutting and checking ------------------------------------------------------------------------------

_TOKENS = re.compile(r"\S+\s*")
# A sentence ends at . ! ? or an ellipsis (and closing quotes) before a space; at a CJK full stop,
# exclamation or question mark anywhere.
SENTENCE_END = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]*(?=\s|$)|[\u3002\uff01\uff1f]")


def _longest(size: int, fits: Callable[[int], bool]) -> int:
    """The largest k in 0..size with fits(k), for a `fits` that stays false once it turns false."""
    low, high = 0, size
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def fit(platform: Platform, text: str, limit: int | None = None) -> str:
    """`text` cut until it fits `limit` (the platform's): at a sentence end when one is near the end,
    else at a word boundary with an ellipsis. The last resort after the model was asked to shorten."""
    limit = RULES[platform].limit if limit is None else limit
    text = text.strip()
    if count(platform, text) <= limit:
        return text

    def ellipsed(kept: str) -> str:
        return kept.rstrip().rstrip(",;:-\u2013\u2014") + ELLIPSIS

    # Whole words first (a longer prefix never weighs less); inside the first word (CJK, say) if none fits.
    tokens = _TOKENS.findall(text)
    words = _longest(len(tokens), lambda k: count(platform, ellipsed("".join(tokens[:k]))) <= limit)
    if words:
        kept = "".join(tokens[:words]).rstrip()
    else:
        size = _longest(len(text), lambda k: count(platform, ellipsed(text[:k])) <= limit)
        kept = text[:size].rstrip()
    if not kept:
        return ""
    ends = [m.end() for m in SENTENCE_END.finditer(kept)]
    if ends and ends[-1] >= len(kept) * 0.6:  # a whole sentence reads better than a cut one
        sentences = kept[: ends[-1]]
        if count(platform, sentences) <= limit:
            return sentences
    return ellipsed(kept)


def ensure_within(platform: Platform, text: str) -> int:
    """The post's length as the platform counts it; raises PostOverLimit when it is over the limit."""
    rules = RULES[platform]
    characters = count(platform, text)
    if characters > rules.limit:
        raise PostOverLimit(
            f"refusing to publish a {rules.name} post of {characters} characters: the limit is {rules.limit}"
        )
    return characters
