"""What every research provider answers with, and the sources a user supplies with the job."""

from __future__ import annotations

from typing import Protocol

from pressroom_contracts.events import Source

SNIPPET_CHARS = 500
# A source the user asked for is not ranked against found ones: it is always kept, and first.
USER_SOURCE_SCORE = 1.0


class ResearchProvider(Protocol):
    name: str
    # Price-table models of its paid calls (None: the call is free and no usage is recorded).
    search_model: str | None
    include_model: str | None

    async def search(self, query: str, limit: int) -> list[Source]: ...

    async def include(self, urls: list[str]) -> list[Source]:
        """The user's own URLs as sources, in the order given, one per URL (never dropped)."""
        ...

    def describe(self, query: str) -> str:
        """The progress line shown while it searches."""
        ...

    async def close(self) -> None: ...


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """Whitespace collapsed, cut at a word boundary when it is too long."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut) + "…"


def user_source(url: str, note: str, title: str | None = None, content: str | None = None) -> Source:
    """A URL the user supplied: its content when it was fetched, otherwise a note saying why not."""
    return Source(
        title=(title or "").strip() or url,
        location=url,
        snippet=snippet(content) if content and content.strip() else note,
        score=USER_SOURCE_SCORE,
    )


def unread_user_sources(urls: list[str], why: str) -> list[Source]:
    return [user_source(url, f"Supplied by the user; {why}.") for url in urls]


def same_location(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")
