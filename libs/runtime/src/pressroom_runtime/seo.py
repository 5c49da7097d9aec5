"""The SEO pack of a post, from its title and text alone (the writer puts it on blog.completed, the
gateway's exports build their front matter from it): SEO title, meta description, slug
(python-slugify, which transliterates non-Latin titles), keywords, reading time, Open Graph and
Twitter card fields, and a schema.org Article as JSON-LD."""

from __future__ import annotations

import math
import re
from collections import Counter

from slugify import slugify

from pressroom_contracts.events import Citation, SeoPack

from .checks import readable
from .words import content_words

TITLE_CHARS = 60
DESCRIPTION_CHARS = 155
WORDS_PER_MINUTE = 200
KEYWORDS = 6
SLUG_CHARS = 80

_MARKUP = re.compile(r"\s?\[\d+\]|!?\[([^\]]*)\]\([^)]*\)|[*_`>#\u201c\u201d]")


SNIPPET_WORDS = 8  # a paragraph shorter than this is a label, not a description


def shorten(text: str, limit: int) -> str:
    """`text` within `limit` characters: whole, else up to its last sentence or word that fits, with an
    ellipsis after a cut word."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    sentence = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    if sentence >= limit // 2:
        return cut[: sentence + 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > 0 else cut).rstrip(" ,;:-\u2013\u2014") + "\u2026"


def plain_text(markdown: str) -> str:
    """Markdown as a reader sees it: no markers, headings, citations or link addresses."""
    return " ".join(_MARKUP.sub(lambda m: m.group(1) or "", markdown).split())


def keywords(topic: str, title: str, body: str, count: int = KEYWORDS) -> list[str]:
    """The topic's own content words first, then the body's most frequent ones."""
    ranked = [w for w, _ in Counter(content_words(body)).most_common()]
    words = list(dict.fromkeys([*content_words(readable(topic)), *content_words(title), *ranked]))
    return words[:count]


def seo_pack(
    *, topic: str, title: str, body: str, language: str, words: int, citations: list[Citation]
) -> SeoPack:
    """`body` is the post's Markdown without its title."""
    paragraphs = [
        p for p in body.split("\n\n") if p.strip() and not p.lstrip().startswith(("#", "-", "*", ">"))
    ]
    # The first paragraph that reads as prose: a line of a few words ending in ":" introduces, not describes.
    prose = [
        p for p in paragraphs if len(plain_text(p).split()) >= SNIPPET_WORDS and not p.rstrip().endswith(":")
    ]
    lead = (prose or paragraphs or [body])[0]
    description = shorten(plain_text(lead) or title, DESCRIPTION_CHARS)
    seo_title = shorten(title, TITLE_CHARS)
    slug = (
        slugify(title, max_length=SLUG_CHARS, word_boundary=True)
        or slugify(topic, max_length=SLUG_CHARS)
        or "post"
    )
    tags = keywords(topic, title, plain_text(body))
    minutes = max(1, math.ceil(words / WORDS_PER_MINUTE))
    return SeoPack(
        title=seo_title,
        meta_description=description,
        slug=slug,
        keywords=tags,
        reading_minutes=minutes,
        open_graph={
            "og:type": "article",
            "og:title": seo_title,
            "og:description": description,
            "og:locale": language.replace("-", "_"),
        },
        twitter={
            "twitter:card": "summary_large_image",
            "twitter:title": seo_title,
            "twitter:description": description,
        },
        json_ld={
            "@context": "https://schema.org",
            "@type": "Article",
            "headline": seo_title,
            "description": description,
            "inLanguage": language,
            "keywords": ", ".join(tags),
            "wordCount": words,
            "timeRequired": f"PT{minutes}M",
            "citation": [c.location if c.location.startswith("http") else c.title for c in citations],
        },
    )
