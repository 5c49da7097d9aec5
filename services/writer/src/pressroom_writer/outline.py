"""The plan of a post before it is written: a title, then sections, each naming the sources it uses.

Models answer in one small line format, the same for every model:

    # The title
    ## A section's heading [1, 2]
    ## Another section []

Base models (the completion profile) are held to it by a llama.cpp grammar, so even a tiny model
answers with a valid outline; chat models are asked for it in words, and whatever they answer is read
leniently. An answer with too few sections gives way to a plain outline built from the topic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pressroom_contracts.jobs import JobRequest, Length
from pressroom_runtime.checks import remove_links

MIN_SECTIONS = 2
# Sections per requested length: a short post has a few, a long one more.
SECTIONS: dict[Length, int] = {Length.short: 3, Length.medium: 4, Length.long: 6}
MAX_TEXT = 70  # characters of a title or a heading

_HEADING = re.compile(r"^\s*(#{1,3})\s*(.+?)\s*$")
_REFS = re.compile(r"\[([\d,\s]*)\]\s*$")
_WORD = re.compile(r"[^\W\d_]")  # a letter, in any script ("5G" and "C++" are headings)


@dataclass(frozen=True)
class Section:
    heading: str
    sources: tuple[int, ...] = ()


@dataclass(frozen=True)
class Outline:
    title: str
    sections: tuple[Section, ...]


def section_count(request: JobRequest) -> int:
    return SECTIONS[request.length]


def grammar(sources: int, sections: int) -> str:
    """A GBNF grammar for an outline with MIN_SECTIONS to `sections` sections citing 1..`sources`."""
    optional = " section?" * (sections - MIN_SECTIONS)
    ref = " | ".join(f'"{n}"' for n in range(sources, 0, -1)) if sources else None
    rules = [
        f'root ::= "# " text "\\n" section section{optional}',
        'section ::= "## " text " [" refs? "]\\n"' if ref else 'section ::= "## " text " []\\n"',
        f"text ::= [^\\n\\[\\]#]{{3,{MAX_TEXT}}}",
    ]
    if ref:
        rules += ['refs ::= ref (", " ref){0,2}', f"ref ::= {ref}"]
    return "\n".join(rules) + "\n"


def parse(answer: str, request: JobRequest, sources: int) -> Outline:
    """The outline in a model's answer; a plain one from the topic when the answer has too few sections."""
    title = ""
    sections: list[Section] = []
    for line in answer.splitlines():
        match = _HEADING.match(line)
        if not match:
            continue
        level, text = len(match.group(1)), match.group(2)
        refs = _REFS.search(text)
        numbers: tuple[int, ...] = ()
        if refs:
            text = text[: refs.start()].strip()
            found = (int(n) for n in re.findall(r"\d+", refs.group(1)))
            numbers = tuple(dict.fromkeys(n for n in found if 1 <= n <= sources))
        text = _tidy(text)
        if not text:
            continue
        if level == 1 and not title and not sections:
            title = text
        elif level > 1:
            sections.append(Section(text, numbers))
    wanted = section_count(request)
    if len(sections) < MIN_SECTIONS:
        return plain(request, sources, title)
    return Outline(title or title_for(request.topic), tuple(_distinct(sections)[:wanted]))


def plain(request: JobRequest, sources: int, title: str = "") -> Outline:
    """An outline that needs no model: the topic, then numbered parts sharing the sources out."""
    count = section_count(request)
    numbers = list(range(1, sources + 1))
    sections = [
        Section(heading, tuple(numbers[i::count]))
        for i, heading in enumerate(_plain_headings(request.topic, count))
    ]
    return Outline(title or title_for(request.topic), tuple(sections))


def title_for(topic: str) -> str:
    title = topic.strip().rstrip(".?!")
    return title[:1].upper() + title[1:]


def _plain_headings(topic: str, count: int) -> list[str]:
    subject = title_for(topic)
    headings = [f"What {subject.lower()} is about", "What to know first", "How it works in practice"]
    headings += ["Costs and benefits", "Common questions", "Next steps"]
    return [*headings[: count - 1], "What it means for you"]


def _tidy(text: str) -> str:
    text, _ = remove_links(text, [])  # a title or a heading carries no address, invented or not
    text = re.sub(r"^\d+[.)]\s*", "", text.strip().strip("*_\"'").strip())  # "1. Heading", **Heading**
    # An aside left open — an address the grammar's length cut off, then removed, leaves "Basics (" —
    # goes with its opening parenthesis.
    text = re.sub(r"\s*\([^()]*$", "", text[:MAX_TEXT]).strip(" :,-\u2013\u2014")
    return text if _WORD.search(text) else ""  # "1", "..": says nothing (a plain title or outline instead)


def _distinct(sections: list[Section]) -> list[Section]:
    """A tiny model repeats itself: one section per heading."""
    seen: set[str] = set()
    kept = []
    for section in sections:
        key = section.heading.lower()
        if key not in seen:
            seen.add(key)
            kept.append(section)
    return kept
