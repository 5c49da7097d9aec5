"""Per-client and per-address limits, with the `limits` library (in-memory storage, moving window).

- Work per client (PRESSROOM_GATEWAY_JOB_RATE, default 10/minute): every accepted start, regenerate and
  edit counts one, whatever the transport (jobs.py).
- Concurrent streaming connections per client, WebSockets (`/v1/ws`, `/content`) and event streams
  alike (PRESSROOM_GATEWAY_MAX_CONNECTIONS, default 10).
- WebSocket connection attempts per IP address, counted before authentication
  (PRESSROOM_GATEWAY_CONNECT_RATE, default 60/minute).

Each refusal is a `RateLimited` (code `rate_limited`, HTTP 429 with Retry-After). The counts live in this
process: with several gateway replicas each enforces its own share (a shared storage such as Redis
would make them global).
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from .auth import Client
from .errors import RateLimited
from .settings import GatewaySettings


class Limiter:
    """The limits of one gateway."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._window = MovingWindowRateLimiter(MemoryStorage())
        self.job_rate = parse(settings.job_rate)
        self.connect_rate = parse(settings.connect_rate)
        self.max_connections = settings.max_connections
        self._open: dict[str, int] = {}

    async def check_job_quota(self, client: Client) -> None:
        """Counts one unit of work for `client`; RateLimited (nothing counted) when it used its quota."""
        await self._hit(self.job_rate, f"too many jobs started (limit {self.job_rate})", "jobs", client.id)

    async def check_connect_attempt(self, address: str) -> None:
        """Counts one connection attempt from `address`; RateLimited when there were too many."""
        await self._hit(
            self.connect_rate, f"too many connection attempts (limit {self.connect_rate})", "connect", address
        )

    @asynccontextmanager
    async def connection_slot(self, client: Client) -> AsyncIterator[None]:
        """Holds one of the client's concurrent connections; RateLimited when all are in use."""
        held = self._open.get(client.id, 0)
        if held >= self.max_connections:
            raise RateLimited(
                f"too many open connections for this client (limit {self.max_connections})", retry_after=1
            )
        self._open[client.id] = held + 1
        try:
            yield
        finally:
            left = self._open.get(client.id, 1) - 1
            if left > 0:
                self._open[client.id] = left
            else:
                self._open.pop(client.id, None)

    async def _hit(self, item: RateLimitItem, message: str, *identifiers: str) -> None:
        if await self._window.hit(item, *identifiers):
            return
        stats = await self._window.get_window_stats(item, *identifiers)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(f"{message}; try again in {retry_after} s", retry_after=retry_after)
