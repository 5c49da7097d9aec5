"""Assertions about processes, for tests that must leave none behind (start/stop, fault tests)."""

from __future__ import annotations

import time
from pathlib import Path

import psutil


def processes_mentioning(text: str) -> list[psutil.Process]:
    """Live processes whose command line mentions `text` (a data folder, a port)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if any(text in part for part in proc.info["cmdline"] or []):
            found.append(proc)
    return found


def assert_gone(text: str | Path, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while (left := processes_mentioning(str(text))) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"processes left behind: {[p.info['cmdline'] for p in left]}"
