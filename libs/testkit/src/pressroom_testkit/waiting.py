"""Polling for tests: wait until something the system does in the background has happened."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(
    check: Callable[[], Awaitable[Any] | Any], timeout: float = 20.0, interval: float = 0.1
) -> Any:
    """Polls `check` (plain or async) until it returns something truthy, and returns that; its last value
    fails the test once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value or time.monotonic() > deadline:
            assert value, f"condition not met within {timeout}s: {value!r}"
            return value
        await asyncio.sleep(interval)
