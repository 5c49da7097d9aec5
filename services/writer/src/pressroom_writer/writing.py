"""Turns the model's sections into a blog post: whole sentences, citations, a sources section."""

from __future__ import annotations

import re

from pressroom_contracts.events import Citation, PublishChecks, Source
from pressroom_runtime.checks import check_text, tidy
from pressroom_runtime.words import repeat_key

_CITATION = re.compile(r"\[(\d{1,2})\]")


def citations(markdown: str, sources: list[Source]) -> tuple[str, list[Citation]]:
    """Keeps only [n] markers that point at a source research really returned, and lists those."""
    used: dict[int, Citation] = {}

    def keep(match: re.Match[str]) -> str:
        number = int(match.group(1))
        if 1 <= number <= len(sources):
            source = sources[number - 1]
            used.setdefault(number, Citation(number=number, title=source.title, location=source.location))
            return match.group(0)
        return ""

    cleaned = _CITATION.sub(keep, markdown)
    return cleaned, [used[n] for n in sorted(used)]


def word_count(markdown: str) -> int:
    return len(re.findall(r"\b\w+\b", markdown))


def assemble(title: str, body: str, cited: list[Citation]) -> str:
    """The stored post: title, body and a sources section for the citations it uses."""
    parts = [f"# {title}", body]
    if cited:
        parts.append("## Sources\n\n" + "\n".join(f"[{c.number}] {c.title}: {c.location}" for c in cited))
    return "\n\n".join(parts) + "\n"


def limit_words(markdown: str, max_words: int) -> str:
    """Keeps whole paragraphs while they fit in `max_words`; the first paragraph is cut if it alone is longer."""
    kept: list[str] = []
    total = 0
    for paragraph in markdown.split("\n\n"):
        words = word_count(paragraph)
        if total + words > max_words:
            if not kept:
                kept.append(" ".join(paragraph.split()[:max_words]) + "…")
            break
        kept.append(paragraph)
        total += words
    return "\n\n".join(kept)


_LEADING_HEADING = re.compile(r"^\s*#{1,6}\s[^\n]*\n+")
_HEADING_LINE = re.compile(r"^[ \t]*(#{1,6})[ \t]+(.*?)[ \t]*$", re.M)
MAX_HEADING = 90  # characters: a longer "heading" is a paragraph the model began with hashes
_TEXT = 7  # deeper than any heading: what follows a heading is text


def section_body(text: str, heading_cut: bool = False) -> str:
    """A model's section as it goes under the outline's heading: without a first line repeating that
    heading, its own headings one level below the outline's (### — the post's sections stay the
    outline's), a run-on "heading" made a paragraph, no line of bare numbers or dots (checks.tidy), and
    ending on a whole sentence. Under a heading that was cut (`heading_cut`), a first line that goes on
    with the words cut off goes too."""

    def beneath(match: re.Match[str]) -> str:
        hashes, words = match.group(1), match.group(2)
        if len(words) > MAX_HEADING:
            return words
        return f"{'#' * max(3, len(hashes))} {words}"

    text = _LEADING_HEADING.sub("", tidy(text)).strip()
    if heading_cut:
        text = _without_heading_tail(text)
    return whole_sentences(_HEADING_LINE.sub(beneath, text))


def _without_heading_tail(text: str) -> str:
    """`text` without the words of a cut heading the model went on with: a first line that ends no
    sentence ("Sunway Group, India|"), or a first sentence that starts in the middle of one ("and how
    they adapt. …"). A first line that is a list item or a heading, or a whole sentence, stays."""
    first, _, rest = text.partition("\n")
    if not rest.strip() or _LIST_OR_HEADING.match(first):
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(first)]
    if not ends:
        return rest.strip()
    if first[:1].islower() or not first[:1].isalnum():
        return (first[ends[0] :] + "\n" + rest).strip()
    return text


def publishable(
    draft: str, sources: list[Source], language: str, max_words: int
) -> tuple[str, PublishChecks]:
    """The post's body as it is published, and what the checks found: the checks run on the sections
    (pressroom_runtime.checks, which end tidy), then what they may have emptied goes (a repeat, a heading
    left with nothing under it), within `max_words`."""
    body, checks = check_text(draft, sources, language)
    return limit_words(without_repeats(body), max_words), checks


def without_repeats(markdown: str) -> str:
    """Each paragraph once (a small model loops on one, section after section, its punctuation aside),
    and no heading left with nothing under it."""
    seen: set[str] = set()
    kept: list[str] = []
    # A heading with its text on the next line is a paragraph of its own ("### Issues\nThe first…").
    markdown = re.sub(r"(?m)^([ \t]*#{1,6}[ \t][^\n]*)\n(?=[^\n])", r"\1\n\n", markdown)
    for paragraph in markdown.split("\n\n"):
        key = repeat_key(paragraph)
        if _HEADING_LINE.fullmatch(paragraph.strip()) or (key and key not in seen):
            seen.add(key)
            kept.append(paragraph)
    # From the end: a heading stays when text, or a deeper heading that stays, comes after it.
    shown: list[str] = []
    after = 0  # nothing yet
    for paragraph in reversed(kept):
        heading = _HEADING_LINE.fullmatch(paragraph.strip())
        level = len(heading.group(1)) if heading else _TEXT
        if heading is None or after > level:
            shown.append(paragraph)
            after = level
    return "\n\n".join(reversed(shown))


_SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f][\"'\u201d\u2019)\]]*(?=\s|$)")
_LIST_OR_HEADING = re.compile(r"^\s*(?:[-*+]\s|\d+[.)]\s|#)")


def whole_sentences(text: str) -> str:
    """A section never ends mid-thought: a last paragraph that stops inside a sentence (a model cut
    off by its token budget) goes back to its last full stop. List items and headings are left alone."""
    text = text.rstrip()
    head, _, last = text.rpartition("\n\n")
    if not last or _LIST_OR_HEADING.match(last) or _SENTENCE_END.search(last[-3:] + " "):
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(last)]
    if ends:
        last = last[: ends[-1]]
    else:  # not one whole sentence in it: drop the fragment
        last = ""
    return "\n\n".join(part for part in (head, last) if part).rstrip()
