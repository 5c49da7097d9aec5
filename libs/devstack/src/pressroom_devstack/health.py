"""Polling health waits: simple, bounded, and with an error that points at the log file."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from .errors import StartupError


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """Any 2xx: llama.cpp answers 200, the services' /healthz 204."""
    try:
        return httpx.get(url, timeout=timeout).is_success
    except httpx.HTTPError:
        return False


def wait_until(
    check: Callable[[], bool],
    *,
    piece: str,
    timeout: float,
    log_path: Path | None = None,
    alive: Callable[[], bool] | None = None,
    interval: float = 0.1,
) -> None:
    """Poll `check` until true. Fails fast when `alive` says the process already exited."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if alive is not None and not alive():
            raise StartupError(piece, "exited during start-up", log_path)
        if time.monotonic() >= deadline:
            raise StartupError(piece, f"not healthy after {timeout:.0f}s", log_path)
        time.sleep(interval)
