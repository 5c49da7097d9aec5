"""A bounded per-connection queue of outgoing items with a 'too slow' signal.

Producers (NATS callbacks, request handlers) never block for long and never grow memory without bound:
when the queue stays full for longer than a short grace period the outbox declares overflow, and the
connection that owns it closes the socket instead of buffering more.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")

# A replay or a burst of deltas can fill the queue faster than the single sender task gets scheduled,
# even for a fast client; only a queue that stays full this long means the client is not keeping up.
DEFAULT_GRACE_SECONDS = 1.0


class Outbox(Generic[T]):
    def __init__(self, maxsize: int, *, grace: float = DEFAULT_GRACE_SECONDS) -> None:
        self._queue: asyncio.Queue[T] = asyncio.Queue(maxsize=maxsize)
        self._grace = grace
        self.overflowed = asyncio.Event()

    async def put(self, item: T) -> bool:
        """Queue `item`; False (item dropped) once the outbox has overflowed."""
        if self.overflowed.is_set():
            return False
        try:
            self._queue.put_nowait(item)
            return True
        except asyncio.QueueFull:
            pass
        try:
            async with asyncio.timeout(self._grace):
                await self._queue.put(item)
            return True
        except TimeoutError:
            self.overflowed.set()
            return False

    async def get(self) -> T:
        return await self._queue.get()

    def qsize(self) -> int:
        return self._queue.qsize()
