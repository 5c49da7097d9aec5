"""Shapes a model's answer into a post: clean text, then the link placeholder and hashtags.

`prepare` keeps the model's text whole, so the caller can see whether it is over the room left
beside the link and hashtags (and ask the model to shorten it); `Draft.fitted` is the last-resort cut.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace

from pressroom_contracts.jobs import Platform
from pressroom_contracts.platforms import LINK_PLACEHOLDER, count
from pressroom_runtime.checks import readable
from pressroom_runtime.words import said_words, without_repeated_paragraphs

from .platforms import RULES, SENTENCE_END, fit

_WORD = re.compile(r"[^\W\d_][\w'-]{2,}")
_STOP = {
    "the", "and", "for", "with", "that", "this", "from", "your", "about", "into", "what", "why", "how",
    "are", "was", "were", "will", "can", "does", "our", "its", "their", "you", "when", "who", "which",
}  # fmt: skip
_HASHTAG = re.compile(r"(?<![\w#])#[^\W_][\w]*")
_LINK_WORDS = re.compile(r"\{+\s*link\s*\}+|\[\s*link\s*\]|<\s*link\s*>", re.IGNORECASE)
_URLS = re.compile(r"\b(?:https?://|www\.)[^\s<>\"']*[^\s<>\"'.,;:!?)\]]", re.IGNORECASE)
_TAGS_LINE = re.compile(r"(?:^|\n)[ \t]*#[^\W_]\w*(?:[ \t]+#[^\W_]\w*)*[ \t]*$")
_MD_LINK = re.compile(r"\[([^\]\n]+)\]\([^)\s]*\)")
_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1", re.DOTALL)
# Single markers, as Markdown reads them: next to the words they mark ("*Benefits*", "_this_"), never
# inside a word ("snake_case_name") or around spaces ("2 * 3 * 4").
_SINGLE_EMPHASIS = re.compile(
    r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])|(?<!\w)_(?=\S)([^_\n]+?)(?<=\S)_(?!\w)"
)
_HYPHENATED_TAG = re.compile(r"(?<![\w#])#[^\W_]\w*(?:-\w+)+")  # "#small-scalesolar": X ends it at "-"
_HEADING = re.compile(r"(?m)^\s{0,3}#{1,6}\s+")
_FENCE = re.compile(r"(?m)^\s*```[^\n]*$")
_QUOTE_MARK = re.compile(r"(?m)^\s{0,3}>\s?")
_CITATION = re.compile(r"\s?\[\d{1,3}\]")  # the blog's [n]: its sources are not in the post
_PREAMBLE = re.compile(
    r"^\s*(?:(?:sure|okay|ok)[!,.]?\s*)?(?:here(?:'s| is| are)\b[^\n]*?:|(?:post|tweet|caption|thread)\s*:)\s*",
    re.IGNORECASE,
)
MIN_WORDS = 3  # of its own in a post: fewer is a title or a label, not a post
_QUOTES = (('"', '"'), ("“", "”"), ("'", "'"), ("«", "»"))


def clean(answer: str) -> str:
    """The post text in a model's answer: no preamble, markdown or stray whitespace, one link at most.

    The post links to the blog: an address the model wrote (too often an invented one) becomes the
    placeholder, and only the first placeholder stays where the model put it."""
    text = unicodedata.normalize("NFC", answer).replace("\r\n", "\n").replace("\r", "\n")
    text = _FENCE.sub("", text)
    text = _PREAMBLE.sub("", text, count=1)
    text = _MD_LINK.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\2", text)
    text = _SINGLE_EMPHASIS.sub(lambda m: m.group(1) or m.group(2), text)
    text = _HEADING.sub("", text)
    text = _QUOTE_MARK.sub("", text)
    text = _CITATION.sub("", text)
    text = _URLS.sub(LINK_PLACEHOLDER, _LINK_WORDS.sub(LINK_PLACEHOLDER, text))
    first = text.find(LINK_PLACEHOLDER)  # one link: the first place the model put one
    if first >= 0:
        end = first + len(LINK_PLACEHOLDER)
        text = text[:end] + text[end:].replace(LINK_PLACEHOLDER, " ")
    text = _HYPHENATED_TAG.sub(lambda m: m.group().replace("-", ""), text)
    text = tidy(without_repeated_paragraphs(_distinct_hashtags(tidy(text))))
    for opening, closing in _QUOTES:  # the whole answer in quotes
        if len(text) > 1 and text.startswith(opening) and text.endswith(closing):
            inner = text[1:-1]
            if opening not in inner and closing not in inner:
                text = inner.strip()
    return text


def _distinct_hashtags(text: str) -> str:
    """Each hashtag once, whatever its case ("#SolarPower #solarpower"): the first one written stays."""
    seen: set[str] = set()

    def once(match: re.Match[str]) -> str:
        tag = match.group().lower()
        if tag in seen:
            return ""
        seen.add(tag)
        return match.group()

    return _HASHTAG.sub(once, text)


def usable(body: str) -> bool:
    """Whether a post's text says something: words of its own beyond the link, hashtags and an aside
    ("(short version) {link} #Solar", "...\nSolar Energy\n\n{link}" say nothing)."""
    words = _HASHTAG.sub(" ", re.sub(r"\([^()]*\)", " ", body.replace(LINK_PLACEHOLDER, " ")))
    return len(said_words(words)) >= MIN_WORDS


def tidy(text: str) -> str:
    """Single spaces, at most one blank line, no space left before a full stop or comma."""
    lines = [" ".join(line.split()) for line in text.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return re.sub(r"[ \t]+([.,])(?=\s|$)", r"\1", text)


def complete_sentences(text: str) -> str:
    """An answer the token cap cut short, back to its last whole sentence (when most of it stays)."""
    text = text.rstrip()
    ends = [m.end() for m in SENTENCE_END.finditer(text)]
    if ends and ends[-1] < len(text) and ends[-1] >= len(text) * 0.5:
        return text[: ends[-1]]
    return text


def hashtags(topic: str, count: int) -> list[str]:
    """Up to `count` hashtags from the topic: the whole topic in CamelCase when short, then its words."""
    words = [
        w.replace("'", "").replace("-", "") for w in _WORD.findall(readable(topic)) if w.lower() not in _STOP
    ]
    candidates: list[str] = []
    if 2 <= len(words) <= 3 and sum(map(len, words)) <= 20:
        candidates.append("".join(w[:1].upper() + w[1:] for w in words))
    candidates += [w[:1].upper() + w[1:] for w in sorted(words, key=len, reverse=True)]
    tags: list[str] = []
    for word in candidates:
        tag = "#" + word
        if tag.lower() not in (t.lower() for t in tags):
            tags.append(tag)
    return tags[:count]


@dataclass(frozen=True)
class Draft:
    """A post in the making: the model's text, and what goes after it (link and hashtags)."""

    platform: Platform
    body: str
    suffix: str

    @property
    def separator(self) -> str:
        """A space, or a blank line after a body of paragraphs (a space after its hashtag line)."""
        return "\n\n" if "\n" in self.body and not _TAGS_LINE.search(self.body) else " "

    @property
    def room(self) -> int:
        """What the body may weigh beside the suffix."""
        return RULES[self.platform].limit - count(self.platform, self.separator + self.suffix)

    @property
    def over(self) -> bool:
        return count(self.platform, self.body) > self.room

    def fitted(self) -> Draft:
        """The body cut to its room (the last resort: a model is asked to shorten first). A link the
        cut would lose moves to the suffix."""
        if not self.over:
            return self
        body = fit(self.platform, self.body, self.room)
        if LINK_PLACEHOLDER in self.body and LINK_PLACEHOLDER not in body:
            moved = Draft(
                self.platform,
                tidy(self.body.replace(LINK_PLACEHOLDER, " ")),
                f"{LINK_PLACEHOLDER} {self.suffix}".strip(),
            )
            return replace(moved, body=fit(self.platform, moved.body, moved.room))
        return replace(self, body=body)

    @property
    def text(self) -> str:
        return self.separator.join(part for part in (self.body, self.suffix) if part)


def suffix_for(platform: Platform, body: str, topic: str) -> str:
    """The link placeholder unless the body has it, then hashtags from the topic up to the platform's
    number (the model's own hashtags count towards it)."""
    present = {t.lower() for t in _HASHTAG.findall(body)}
    wanted = max(0, RULES[platform].hashtags - len(present))
    tags = [t for t in hashtags(topic, RULES[platform].hashtags + len(present)) if t.lower() not in present]
    link = [] if LINK_PLACEHOLDER in body else [LINK_PLACEHOLDER]
    return " ".join([*link, *tags[:wanted]])


def prepare(platform: Platform, answer: str, topic: str) -> Draft:
    body = clean(answer)
    return Draft(platform, body, suffix_for(platform, body, topic))


def compose(platform: Platform, answer: str, topic: str) -> str:
    """The finished post: the model's text, cut to fit when it has to, then link and hashtags."""
    return prepare(platform, answer, topic).fitted().text
