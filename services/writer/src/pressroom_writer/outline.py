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
from dataclasses import dataclass, field

from pressroom_contracts.jobs import JobRequest, Length
from pressroom_runtime.checks import remove_links, tidy, to_markdown
from pressroom_runtime.words import FUNCTION_WORDS

MIN_SECTIONS = 2
# Sections per requested length: a short post has a few, a long one more.
SECTIONS: dict[Length, int] = {Length.short: 3, Length.medium: 4, Length.long: 6}
MAX_TEXT = 70  # characters of a title or a heading

_HEADING = re.compile(r"^\s*(#{1,3})\s*(.+?)\s*$")
_REFS = re.compile(r"\[([\d,\s]*)\]\s*$")
_WORD = re.compile(r"[^\W\d_]")  # a letter, in any script ("5G" and "C++" are headings)
# What a title or heading cut at MAX_TEXT must not end on: a separator, or a word that leads on to the
# words cut off ("… how they can impact on", "… Considerations | by").
_SEPARATOR = r"[|/&+:,;\-\u2013\u2014\u00b7\u2022]"
_DANGLING = FUNCTION_WORDS | set(
    """a an the of on in at by to for and or but nor with from as vs via into onto how what why who
    its your our their is are was be de del la le les des du et à au en pour par el los las y con para
    por der die das und von zu mit für im am den dem di il e per da""".split()
)
_TAIL = re.compile(rf"\s+{_SEPARATOR}\s+(\S+(?:\s+\S+){{0,3}})$")  # "… - National", "… | by Sunway"


@dataclass(frozen=True)
class Section:
    heading: str
    sources: tuple[int, ...] = ()
    # The heading was cut at MAX_TEXT: the model may go on with the words cut off (writing.section_body).
    cut: bool = field(default=False, compare=False)


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
        text, cut = _tidy(text)
        if not text:
            continue
        if level == 1 and not title and not sections:
            title = text
        elif level > 1:
            sections.append(Section(text, numbers, cut))
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


_FILE_ASIDE = re.compile(r"\s*\(\s*[\w.-]+\.(?:md|markdown|txt|pdf|html?|docx?|rst)\s*\)", re.IGNORECASE)


def _tidy(text: str) -> tuple[str, bool]:
    """A title or heading as it is published, and whether it was cut at MAX_TEXT."""
    # At the grammar's limit (or within the two spaces it may end on) the text was cut, its last word
    # maybe in the middle (at the limit exactly).
    cut = len(text) >= MAX_TEXT - 2
    text = text[:MAX_TEXT]
    if len(text) == MAX_TEXT:
        text = re.sub(r"\s*\S*$", "", text)
    text, _ = remove_links(tidy(to_markdown(text)[0]), [])  # a title or heading carries no address
    text = re.sub(r"^\d+[.)]\s*", "", text.strip().strip("*_\"'").strip())  # "1. Heading", **Heading**
    # An aside left open — an address the grammar's length cut off, then removed, leaves "Basics (" —
    # goes with its opening parenthesis.
    text = re.sub(r"\s*\([^()]*$", "", text).strip(" :,-\u2013\u2014")
    # A source's file name the model copied from the prompt's list: "Solar energy basics (solar-energy.md)".
    text = _FILE_ASIDE.sub("", text).strip()
    if cut:
        text = _cut_back(text)
    # "1", "..": says nothing (a plain title or outline instead)
    return (text if _WORD.search(text) else ""), cut


def _cut_back(text: str) -> str:
    """A cut title or heading back to where it ends cleanly: without a short fragment after its last
    separator (when three words or more stay before it), then without dangling words or separators."""
    tail = _TAIL.search(text)
    if tail and len(text[: tail.start()].split()) >= 3:
        text = text[: tail.start()]
    words = text.split()
    while len(words) > 1 and (words[-1].lower() in _DANGLING or re.fullmatch(rf"{_SEPARATOR}+", words[-1])):
        words.pop()
    return " ".join(words).rstrip(" :,;-\u2013\u2014|/&+")


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
