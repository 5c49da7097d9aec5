"""Web research through Tavily's async client (tavily-python).

Transient provider errors are retried here, a few times with exponential backoff and jitter; when
they persist they become a TransientError and the runtime's paced redelivery takes over. A refused key
is a PermanentError (code provider_auth): retrying cannot fix it.

How tavily-python reports each failure (async_tavily.py, _handle_error_response):
HTTP 429 → UsageLimitExceededError; 401 → InvalidAPIKeyError; 403/432/433 (forbidden, plan or
pay-as-you-go limit) → ForbiddenError; 400 → BadRequestError; any other status →
httpx.HTTPStatusError (raise_for_status); an httpx timeout → tavily.errors.TimeoutError; a connection
failure → httpx.TransportError, passed through unwrapped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from tavily import AsyncTavilyClient
from tavily.errors import (
    BadRequestError,
    ForbiddenError,
    InvalidAPIKeyError,
    MissingAPIKeyError,
    UsageLimitExceededError,
)
from tavily.errors import TimeoutError as TavilyTimeoutError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from pressroom_contracts.events import Source
from pressroom_runtime.errors import PermanentError, StageError, TransientError
from pressroom_runtime.logs import get_logger

from ..sources import snippet, unread_user_sources, user_source

log = get_logger(__name__)

ATTEMPTS = 3


def is_transient(exc: BaseException) -> bool:
    """Worth another try in a moment: timeouts, connection errors, HTTP 429 and 5xx."""
    if isinstance(exc, (TavilyTimeoutError, UsageLimitExceededError, httpx.TransportError)):
        return True
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return status == 429 or status >= 500
    return False


def _detail(exc: BaseException) -> str:
    text = str(exc).strip()
    return f": {text}" if text else ""


def to_stage_error(exc: Exception, action: str) -> StageError | None:
    """The provider's error as the runtime understands it; None for an error this does not know."""
    if isinstance(exc, (InvalidAPIKeyError, MissingAPIKeyError)):
        return PermanentError(f"Tavily rejected the API key{_detail(exc)}", code="provider_auth")
    if isinstance(exc, ForbiddenError):
        return PermanentError(
            "Tavily rejected the API key (access forbidden, or the key's plan or credit limit is reached)"
            + _detail(exc),
            code="provider_auth",
        )
    if isinstance(exc, BadRequestError):
        return PermanentError(f"Tavily rejected the {action}{_detail(exc)}", code="provider_rejected")
    if isinstance(exc, UsageLimitExceededError):
        return TransientError(f"Tavily rate limit reached{_detail(exc)}", code="provider_rate_limited")
    if isinstance(exc, (TavilyTimeoutError, httpx.TransportError)):
        return TransientError(
            f"Tavily unavailable: {type(exc).__name__}{_detail(exc)}", code="provider_unavailable"
        )
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        if is_transient(exc):
            return TransientError(f"Tavily unavailable: HTTP {status}", code="provider_unavailable")
        return PermanentError(f"Tavily refused the {action}: HTTP {status}", code="provider_rejected")
    return None


class TavilySearch:
    name = "tavily"
    search_model: str | None = "tavily-search"
    include_model: str | None = "tavily-extract"

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
        attempts: int = ATTEMPTS,
        backoff: float = 0.5,
    ) -> None:
        """`http_client` replaces the client's own (tests pass one with an httpx.MockTransport)."""
        self.client = AsyncTavilyClient(api_key=api_key, api_base_url=base_url, client=http_client)
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff

    def describe(self, query: str) -> str:
        return f"Searching the web for “{query}”"

    async def close(self) -> None:
        await self.client.close()  # leaves a client it was given open: its owner closes it

    async def _call(
        self, action: str, call: Callable[..., Awaitable[dict[str, Any]]], *args: Any, **kwargs: Any
    ) -> dict[str, Any]:
        def before_sleep(state: RetryCallState) -> None:
            outcome = state.outcome.exception() if state.outcome else None
            log.warning(
                "tavily call failed, retrying",
                action=action,
                attempt=state.attempt_number,
                error=f"{type(outcome).__name__}: {outcome}",
                delay=round(state.next_action.sleep, 2) if state.next_action else None,
            )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential_jitter(multiplier=self.backoff, max=self.backoff * 8, jitter=self.backoff),
            retry=retry_if_exception(is_transient),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return await retrying(call, *args, **kwargs)
        except Exception as exc:
            error = to_stage_error(exc, action)
            if error is None:
                raise
            raise error from exc

    async def search(self, query: str, limit: int) -> list[Source]:
        response = await self._call(
            "search",
            self.client.search,
            query,
            max_results=limit,
            search_depth="basic",
            timeout=self.timeout,
        )
        sources = []
        for item in response.get("results") or []:
            url = item.get("url")
            if not url:
                continue
            sources.append(
                Source(
                    title=(item.get("title") or "").strip() or url,
                    location=url,
                    snippet=snippet(item.get("content") or ""),
                    score=round(float(item.get("score") or 0.0), 4),
                )
            )
        return sources[:limit]

    async def include(self, urls: list[str]) -> list[Source]:
        """The user's URLs read with Tavily extract; a URL it cannot read is kept, saying so."""
        if not urls:
            return []
        try:
            response = await self._call(
                "extract",
                self.client.extract,
                urls,
                extract_depth="basic",
                format="text",
                timeout=self.timeout,
            )
        except PermanentError as exc:
            if exc.code == "provider_auth":
                raise
            log.warning("tavily could not extract the supplied sources", reason=exc.message)
            return unread_user_sources(urls, f"Tavily could not read it ({exc.message})")
        read = {_key(r.get("url", "")): r for r in response.get("results") or []}
        failed = {_key(r.get("url", "")): r for r in response.get("failed_results") or []}
        sources = []
        for url in urls:
            result = read.get(_key(url))
            if result is not None and (result.get("raw_content") or "").strip():
                sources.append(
                    user_source(url, note="", title=result.get("title"), content=result.get("raw_content"))
                )
                continue
            why = (failed.get(_key(url)) or {}).get("error") or "no readable content"
            sources.append(user_source(url, f"Supplied by the user; Tavily could not read it ({why})."))
        return sources


def _key(url: str) -> str:
    return url.rstrip("/")
