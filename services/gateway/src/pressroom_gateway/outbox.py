"""A bounded per-connection queue of outgoing items with a 'too slow' signal.

Producers (a job's feed fanning out to thousands of connections, request handlers) never block: `offer`
queues or refuses at once. A connection that does not keep up is dropped alone: its outbox overflows
when it holds `maxsize` items for longer than a short grace period (a replay or a burst of deltas can
fill it faster than its sender task is scheduled, even for a fast client), or twice `maxsize` at all.
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
        self._ready = asyncio.Event()
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
        self._ready.set()
        return True

    async def get(self) -> T:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        item = self._items.popleft()
        if len(self._items) < self._soft:
            self._full_since = None
        return item

    def qsize(self) -> int:
        return len(self._items)
