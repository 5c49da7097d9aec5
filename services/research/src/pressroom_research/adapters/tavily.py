"""Web research through Tavily's async client."""

from __future__ import annotations

from tavily import AsyncTavilyClient
from tavily.errors import (
    BadRequestError,
    ForbiddenError,
    InvalidAPIKeyError,
    MissingAPIKeyError,
    UsageLimitExceededError,
)

from pressroom_contracts.events import Source
from pressroom_runtime.errors import PermanentError, TransientError


class TavilySearch:
    name = "tavily"

    def __init__(self, api_key: str, client: AsyncTavilyClient | None = None) -> None:
        self.client = client or AsyncTavilyClient(api_key=api_key)

    def describe(self, query: str) -> str:
        return f"Searching the web for “{query}”"

    async def search(self, query: str, limit: int) -> list[Source]:
        try:
            response = await self.client.search(query, max_results=limit, search_depth="basic")
        except (InvalidAPIKeyError, MissingAPIKeyError, ForbiddenError) as exc:
            raise PermanentError(f"Tavily rejected the API key: {exc}", code="provider_auth") from exc
        except BadRequestError as exc:
            raise PermanentError(f"Tavily rejected the search: {exc}", code="provider_rejected") from exc
        except UsageLimitExceededError as exc:
            raise TransientError(f"Tavily usage limit reached: {exc}", code="provider_rate_limited") from exc
        return [
            Source(
                title=item.get("title") or item["url"],
                location=item["url"],
                snippet=(item.get("content") or "")[:500],
                score=float(item.get("score") or 0.0),
            )
            for item in response.get("results", [])
        ]
