"""Creates the JetStream stream and durable consumers before any service binds to them."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

import nats
from nats.js.errors import NotFoundError

from pressroom_contracts.subjects import STREAM
from pressroom_runtime.broker import nats_servers
from pressroom_runtime.provisioning import provision

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine from sync code, also when the caller is itself inside an event loop (async tests)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def provision_nats(nats_url: str, replicas: int = 1) -> dict[str, str]:
    return run_sync(provision(nats_url, replicas=replicas))


async def _drop_stream(nats_url: str) -> None:
    nc = await nats.connect(
        nats_servers(nats_url), connect_timeout=5, max_reconnect_attempts=3, reconnect_time_wait=1
    )
    try:
        await nc.jetstream().delete_stream(STREAM)
    except NotFoundError:
        pass
    finally:
        await nc.close()


def reset_nats(nats_url: str, replicas: int = 1) -> dict[str, str]:
    """A clean slate for one test: no messages or consumer positions left over from earlier tests."""
    run_sync(_drop_stream(nats_url))
    return provision_nats(nats_url, replicas)
