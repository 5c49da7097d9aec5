"""Background loops that end when their task is cancelled, even where a library swallowed the
CancelledError.

nats-py catches CancelledError in its publish path (`Client._flush_pending`) and carries on: a
`while True` loop whose cancellation lands there goes round again, for ever, and whoever awaits it (a
replica's stop, a test's teardown) waits for ever too. Such loops run `while not cancel_requested()`:
`Task.cancelling()` stays raised once `cancel()` was called, whatever happened to the exception (a
timeout that fired, `asyncio.timeout`, lowers it again).
"""

from __future__ import annotations

import asyncio


def cancel_requested() -> bool:
    """Whether the current task has been asked to stop."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
