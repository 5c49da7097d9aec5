"""Waiting out an outage: a step that fails because a dependency is down is tried again at a paced
interval (exponential, jittered, capped) for as long as it takes. Anything else is raised at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

from .errors import classify, is_outage
from .logs import get_logger

log = get_logger(__name__)
T = TypeVar("T")


def _waiting(error: BaseException | None, next_try_in: float) -> None:
    failure = classify(error) if error else None
    log.warning(
        "dependency unavailable: waiting",
        code=failure.code if failure else None,
        reason=failure.message if failure else None,
        next_try_in=round(next_try_in, 2),
    )


async def outlast(
    step: Callable[[], Awaitable[T]],
    *,
    base: float,
    cap: float,
    waiting: Callable[[bool], None] | None = None,
) -> T:
    """Runs `step` until it does not fail for an outage. `waiting(True)` is called when the first outage
    is met, `waiting(False)` when the step finally ends (either way)."""
    try:  # the common case, without building a retry machine for it
        return await step()
    except Exception as exc:
        if not is_outage(exc):
            raise
        first = exc
    if waiting is not None:
        waiting(True)
    try:
        _waiting(first, base)
        await asyncio.sleep(base)

        def note(state: RetryCallState) -> None:
            _waiting(state.outcome.exception() if state.outcome else None, state.upcoming_sleep)

        async for attempt in AsyncRetrying(
            retry=retry_if_exception(is_outage),
            wait=wait_exponential_jitter(multiplier=2 * base, max=cap, jitter=base),
            before_sleep=note,
            reraise=True,
        ):
            with attempt:
                return await step()
    finally:
        if waiting is not None:
            waiting(False)
    raise AssertionError("unreachable")  # pragma: no cover - AsyncRetrying returns or raises
