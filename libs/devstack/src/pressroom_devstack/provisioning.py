"""Creates the JetStream stream and durable consumers before any service binds to them."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine from sync code, also when the caller is itself inside an event loop (async tests)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def provision_nats(nats_url: str) -> Any:
    try:
        from pressroom_runtime.provisioning import provision
    except ImportError as exc:
        raise ImportError(
            "pressroom_runtime.provisioning.provision is not available; install pressroom-runtime "
            f"(the stream and consumers cannot be created without it): {exc}"
        ) from exc
    return run_sync(provision(nats_url))
