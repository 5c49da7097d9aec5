"""The blog prompt, in both shapes: chat messages and a document opening for base models."""

from __future__ import annotations

from pressroom_contracts.events import ResearchCompleted, Source
from pressroom_runtime.llm import Prompt


def _source_lines(sources: list[Source]) -> str:
    return "\n".join(f"[{n}] {s.title} ({s.location}): {s.snippet}" for n, s in enumerate(sources, 1))


def blog_prompt(research: ResearchCompleted) -> Prompt:
    request = research.request
    sources = _source_lines(research.sources)
    cite = (
        "Cite the numbered sources inline as [1], [2] where you use them; cite nothing else."
        if research.sources
        else "Do not cite sources."
    )
    system = (
        "You are a skilled writer of clear, engaging blog posts. Answer with the post only, in Markdown, "
        "starting with a '# ' title line."
    )
    user = (
        f"Write a {request.tone} blog post of about {request.target_words} words for {request.audience} "
        f"about: {request.topic}\nWrite it in the language with BCP 47 tag '{request.language}'. {cite}"
        + (f"\n\nSources:\n{sources}" if sources else "")
        + (f"\n\nNotes from research: {research.notes}" if research.notes else "")
    )
    # A base model continues documents: give it the opening of a well-formed article.
    document = (
        f"The following is a {request.tone} blog post for {request.audience} about {request.topic}. "
        f"It is about {request.target_words} words long"
        + (" and cites its sources as [1], [2].\n\nSources:\n" + sources if sources else ".")
        + f"\n\n# {title_for(request.topic)}\n\n"
    )
    return Prompt(system=system, user=user, document=document)


def title_for(topic: str) -> str:
    title = topic.strip().rstrip(".?!")
    return title[:1].upper() + title[1:]
