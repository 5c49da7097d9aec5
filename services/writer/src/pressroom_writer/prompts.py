"""The writer's prompts, in both shapes: chat messages, and a document opening for base models."""

from __future__ import annotations

from pressroom_contracts.events import ResearchCompleted, Source
from pressroom_runtime.llm import Prompt

from .outline import MIN_SECTIONS, Outline, Section, grammar, section_count


def source_lines(sources: list[Source], numbers: tuple[int, ...] | None = None) -> str:
    """`[n] title (location): snippet` for each source (only `numbers`, when given), numbered as research returned them."""
    return "\n".join(
        f"[{n}] {s.title} ({s.location}): {s.snippet}"
        for n, s in enumerate(sources, 1)
        if numbers is None or n in numbers
    )


def _about(research: ResearchCompleted) -> str:
    request = research.request
    return f"a {request.tone} blog post of about {request.target_words} words for {request.audience}"


def outline_prompt(research: ResearchCompleted) -> Prompt:
    request = research.request
    count = section_count(request)
    sources = source_lines(research.sources)
    system = (
        "You plan blog posts. Answer with the outline only: a first line '# ' and the title, then one line "
        "per section: '## ' and its heading, then the numbers of the sources that section uses in "
        "brackets, e.g. '## Why it matters [1, 2]' ('[]' when it uses none)."
    )
    user = (
        f"Plan the outline of {_about(research)} about: {request.topic}\n"
        f"Write the title and headings in the language with BCP 47 tag '{request.language}'. "
        f"{MIN_SECTIONS} to {count} sections."
        + (f"\n\nSources:\n{sources}" if sources else "\n\nThere are no sources: use '[]' for every section.")
    )
    document = (
        (f"Sources:\n{sources}\n\n" if sources else "")
        + f"The outline of {_about(research)} about {request.topic}: the title, then {count} section "
        + ("headings, each with the numbers of the sources it uses.\n\n" if sources else "headings.\n\n")
    )
    return Prompt(
        system=system,
        user=user,
        document=document,
        grammar=grammar(len(research.sources), count),
    )


# How a base model is told what it continues, in the post's language: a model continues a document in the
# language it is written in. Other languages get the English opening and the instruction in words.
OPENINGS: dict[str, str] = {
    "de": "Es folgt ein Blogartikel auf Deutsch über {topic}",
    "fr": "Voici un article de blog en français sur {topic}",
    "es": "El siguiente es un artículo de blog en español sobre {topic}",
    "it": "Quello che segue è un articolo di blog in italiano su {topic}",
    "pt": "O texto a seguir é um artigo de blog em português sobre {topic}",
    "nl": "Hieronder volgt een blogartikel in het Nederlands over {topic}",
}


def _opening(research: ResearchCompleted) -> str:
    request = research.request
    template = OPENINGS.get(request.language.split("-")[0].lower())
    return (
        template.format(topic=request.topic)
        if template
        else f"The following is {_about(research)} about {request.topic}"
    )


def section_prompt(
    research: ResearchCompleted,
    outline: Outline,
    section: Section,
    words: int,
    written: str,
    strict_language: bool = False,
) -> Prompt:
    """The prompt for one section of `outline`, with what is `written` so far. `strict_language`: the
    first try came out in another language."""
    request = research.request
    insist = (
        f" Every word in the language '{request.language}', none in another language."
        if strict_language
        else ""
    )
    plan = "\n".join(f"## {s.heading}" for s in outline.sections)
    own = source_lines(research.sources, section.sources)
    cite = (
        f"Cite the numbered sources you use inline as [n], only these; cite nothing else. Say things in your "
        f"own words: copy no sentence from a source.\n\nSources:\n{own}"
        if own
        else "Cite no sources and add no links."
    )
    system = (
        "You are a skilled writer of clear, engaging blog posts. Answer with the text of the one section "
        f"asked for: Markdown paragraphs or a list, no heading, no HTML, no links.{insist}"
    )
    user = (
        f"You are writing {_about(research)} about: {request.topic}\n"
        f"Write in the language with BCP 47 tag '{request.language}'.{insist}\n\n# {outline.title}\n\n{plan}\n\n"
        f"Write the section “{section.heading}” in about {words} words. {cite}"
        + (f"\n\nThe post so far:\n\n{written[-3000:]}" if written else "")
    )
    # A base model continues documents: give it the opening of a well-formed article, up to this section.
    document = (
        _opening(research)
        + (f". It cites its sources as [1], [2].\n\nSources:\n{own}\n\n" if own else ".\n\n")
        + f"# {outline.title}\n\n{written}## {section.heading}\n\n"
    )
    return Prompt(system=system, user=user, document=document, stop=("\n#", "\n\n\n"))
