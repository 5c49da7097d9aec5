"""Shapes a model's answer into a post: clean text, hashtags, the link placeholder, within the limit."""

from __future__ import annotations

import re

from pressroom_contracts.jobs import Platform

from .platforms import LINK_PLACEHOLDER, RULES, count, fit

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]{2,}")
_STOP = {"the", "and", "for", "with", "that", "this", "from", "your", "about", "into", "what", "why", "how"}


def hashtags(topic: str, count: int) -> list[str]:
    words = [w for w in _WORD.findall(topic) if w.lower() not in _STOP]
    seen: list[str] = []
    for word in sorted(words, key=len, reverse=True):
        tag = "#" + word[:1].upper() + word[1:]
        if tag not in seen:
            seen.append(tag)
    return seen[:count]


def compose(platform: Platform, answer: str, topic: str) -> str:
    """The model's text, then the link placeholder and hashtags; the text gives way when space is short."""
    rules = RULES[platform]
    text = answer.replace(LINK_PLACEHOLDER, " ").replace("\r", "")
    text = " ".join(text.split()) if platform is Platform.x else re.sub(r"\n{3,}", "\n\n", text).strip()
    tags = [t for t in hashtags(topic, rules.hashtags) if t.lower() not in text.lower()]
    suffix = " ".join([LINK_PLACEHOLDER, *tags])
    body = fit(platform, text, rules.limit - count(platform, " " + suffix))
    return f"{body} {suffix}".strip()
