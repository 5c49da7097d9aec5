"""An X thread: the model's posts, split and packed into at most MAX_PARTS numbered posts ("1/4 …"),
each within X's 280 as X counts; the link and hashtags close the last one."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pressroom_contracts.jobs import Platform
from pressroom_contracts.platforms import LINK_PLACEHOLDER, count

from .platforms import RULES, fit
from .posts import clean, tidy

MAX_PARTS = 6
X = Platform.x

_BREAK = re.compile(r"\n\s*(?:(?:-{3,}|\*{3,}|_{3,}|={3,})[ \t]*)?\n")  # a blank line or a rule
# A line break before a line that starts with a number ("2/", "2/5", "Tweet 2:") or after one that
# ends with one ("… 1/5", "… (1/5)").
_MARKED_LINE = re.compile(
    r"\n(?=[ \t]*(?:\(?\d{1,2}\s*/\s*\d{0,2}\)?|(?:tweet|post)\s*\d{1,2}\s*[:.)-]?)\s)"
    r"|(?:(?<=\d/\d)|(?<=/\d\d)|(?<=\d/\d\))|(?<=/\d\d\)))[ \t]*\n",
    re.IGNORECASE,
)
_START = re.compile(
    r"^\s*(?:\(?(?P<k>\d{1,2})\s*/\s*(?P<n>\d{0,2})\)?|(?:tweet|post)\s*\d{1,2}\s*[:.)-]?|\d{1,2}[.)])\s+",
    re.IGNORECASE,
)
_END = re.compile(r"\s*\(?(?P<k>\d{1,2})\s*/\s*(?P<n>\d{1,2})\)?\s*$")
_SENTENCES = re.compile(r"(?<=[.!?\u2026])\s+|(?<=[\u3002\uff01\uff1f])\s*")
_NOISE = re.compile(r"^[\W_]*$")


@dataclass(frozen=True)
class Thread:
    parts: list[str]
    complete: bool  # False when text had to be dropped to stay within MAX_PARTS

    @property
    def text(self) -> str:
        return "\n\n".join(self.parts)

    @property
    def characters(self) -> int:
        return max((count(X, part) for part in self.parts), default=0)


def _numbering(match: re.Match[str] | None) -> bool:
    """Whether a "k/n" is a thread number ("1/", "2/5") rather than text ("24/7")."""
    if match is None:
        return False
    k, n = match.group("k"), match.group("n")
    return k is None or not n or 1 <= int(k) <= int(n) <= 25


def _unmarked(post: str) -> str:
    start = _START.match(post)
    if start and (start.group("k") is None or _numbering(start)):
        post = post[start.end() :]
    end = _END.search(post)
    if _numbering(end) and end is not None:
        post = post[: end.start()]
    return post.strip()


def split_posts(answer: str) -> list[str]:
    """The posts of a model's thread: separated by blank lines, rules or numbers, numbers removed."""
    text = tidy(clean(answer).replace(LINK_PLACEHOLDER, " "))  # the link goes at the end
    blocks = [piece for block in _BREAK.split(text) for piece in _MARKED_LINE.split(block)]
    posts = [_unmarked(block) for block in blocks]
    return [post for post in posts if post and not _NOISE.match(post)]


def _pack(units: list[str], room: int) -> list[str]:
    """Adjacent units joined while the result fits `room` (each unit already fits)."""
    packed: list[str] = []
    for unit in units:
        if packed and count(X, f"{packed[-1]} {unit}") <= room:
            packed[-1] = f"{packed[-1]} {unit}"
        else:
            packed.append(unit)
    return packed


def _pieces(post: str, room: int) -> list[str]:
    """A post too long for one part, split at sentences, else words, else inside a word."""
    if count(X, post) <= room:
        return [post]
    units: list[str] = []
    for sentence in _SENTENCES.split(post):
        if count(X, sentence) <= room:
            units.append(sentence)
            continue
        for word in sentence.split():
            units.append(word if count(X, word) <= room else fit(X, word, room))
    return _pack([u for u in units if u], room)


def layout(posts: list[str], suffix: str, max_parts: int = MAX_PARTS) -> Thread:
    """Numbered parts, each within X's limit, at most `max_parts`; `suffix` (link, hashtags) ends it."""
    limit = RULES[X].limit
    room = limit - count(X, f"{max_parts}/{max_parts} ")
    chunks = [piece for post in posts for piece in _pieces(post, room)]
    if len(chunks) > max_parts:
        chunks = _pack(chunks, room)
    complete = len(chunks) <= max_parts
    chunks = chunks[:max_parts]
    tail = " " + suffix
    if chunks and count(X, chunks[-1] + tail) <= room:
        chunks[-1] += tail
    elif len(chunks) < max_parts:
        chunks.append(suffix)
    else:
        chunks[-1] = fit(X, chunks[-1], room - count(X, tail)) + tail
        complete = False
    if len(chunks) == 1:
        return Thread(chunks, complete)
    total = len(chunks)
    return Thread([f"{number}/{total} {chunk}" for number, chunk in enumerate(chunks, 1)], complete)
