"""A bounded per-connection queue of outgoing items with a 'too slow' signal.

Producers (a job's feed fanning out to thousands of connections, request handlers) never block: `offer`
queues or refuses at once. A connection that does not keep up is dropped alone: its outbox overflows
when it holds `maxsize` items for longer than a short grace period (a replay or a burst of deltas can
fill it faster than its sender task is scheduled, even for a fast client), or twice `maxsize` at all.

One reader per outbox (its connection's sender), woken through a plain future: with 10,000 connections a
frame costs one wake-up per connection, so the cheapest one counts (benchmarks/fanout.py).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")

DEFAULT_GRACE_SECONDS = 1.0


class Outbox(Generic[T]):
    def __init__(self, maxsize: int, *, grace: float = DEFAULT_GRACE_SECONDS) -> None:
        self._items: deque[T] = deque()
        self._soft = maxsize
        self._hard = 2 * maxsize
        self._grace = grace
        self._full_since: float | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.overflowed = asyncio.Event()

    def offer(self, item: T) -> bool:
        """Queue `item`; False (item dropped) once the outbox has overflowed."""
        if self.overflowed.is_set():
            return False
        held = len(self._items)
        if held >= self._soft:
            now = time.monotonic()
            if self._full_since is None:
                self._full_since = now
            if held >= self._hard or now - self._full_since > self._grace:
                self.overflowed.set()
                return False
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    async def _filled(self) -> None:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def get(self) -> T:
        """The oldest item (waits for one)."""
        await self._filled()
        item = self._items.popleft()
        if len(self._items) < self._soft:
            self._full_since = None
        return item

    async def take(self) -> list[T]:
        """Every item queued, oldest first (waits for one): a sender writes a burst in one go."""
        await self._filled()
        items = list(self._items)
        self._items.clear()
        self._full_since = None
        return items

    def qsize(self) -> int:
        return len(self._items)
