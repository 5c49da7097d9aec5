"""What every research provider answers with."""

from __future__ import annotations

from typing import Protocol

from pressroom_contracts.events import Source


class ResearchProvider(Protocol):
    name: str

    async def search(self, query: str, limit: int) -> list[Source]: ...

    def describe(self, query: str) -> str:
        """The progress line shown while it searches."""
        ...
