"""Headless Chromium for page tests: Python Playwright driving Debian's `chromium` (Playwright's own
browser download cannot run here), and a guard that keeps a page on loopback.

The `browser` fixture (pressroom_testkit.plugin) skips its test, with the reason, when chromium or the
playwright package is missing or chromium does not start (`make test` installs chromium with apt where
it can).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest

# Background networking off: the browser itself would otherwise reach out at start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _skip(reason: str) -> None:
    print(f"SKIPPED: {reason}")
    pytest.skip(reason)


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A launched headless Chromium (a playwright Browser); skips the test when it cannot be had."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        _skip("chromium is not installed (apt-get install chromium; `make test` does it where it can)")
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:
        _skip(f"the playwright package is not importable: {exc}")
    async with async_playwright() as playwright:
        try:
            instance = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except Exception as exc:  # a chromium that cannot start here (missing libraries, …)
            _skip(f"chromium ({executable}) does not start: {str(exc).splitlines()[0]}")
        try:
            yield instance
        finally:
            await instance.close()


def is_loopback(url: str) -> bool:
    """A URL the page may load with the network off: loopback, or nothing fetched at all (data:, blob:)."""
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.hostname in LOOPBACK_HOSTS


async def offline(context: Any) -> list[str]:
    """Blocks every request of a browser context that would leave the machine, as if the network were
    off; returns the list the blocked URLs are appended to (the caller asserts it stays empty)."""
    attempted: list[str] = []

    async def route(request_route: Any) -> None:
        url = request_route.request.url
        if is_loopback(url):
            await request_route.continue_()
        else:
            attempted.append(url)
            await request_route.abort("internetdisconnected")

    await context.route("**/*", route)
    return attempted
