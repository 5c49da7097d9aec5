"""A child process in its own process group, logging to a file, stopped as a group.

Every process the devstack starts goes through here, so "no orphans" is enforced in one place:
graceful SIGTERM to the whole group, SIGKILL after a grace period, an atexit sweep, and on Linux a
parent-death signal so children do not outlive a `pressroom up` that was itself SIGKILLed.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

_live: weakref.WeakSet[ManagedProcess] = weakref.WeakSet()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec. If the libc call fails we simply lose the safety net.
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ManagedProcess:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        grace: float = 10.0,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.grace = grace
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.alive():
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            out.write(f"\n=== {datetime.now(UTC).isoformat()} start: {' '.join(self.argv)}\n".encode())
            out.flush()
            # PDEATHSIG fires when the *thread* that forked dies, so only arm it from the main thread.
            on_main_thread = threading.current_thread() is threading.main_thread()
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # own process group: stop() reaches grandchildren too
                preexec_fn=_die_with_parent if on_main_thread and sys.platform == "linux" else None,
            )
        _live.add(self)
        log.debug("process started", name=self.name, pid=self._proc.pid)

    def signal_group(self, sig: signal.Signals) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the group without any grace: a crash, for fault tests."""
        self.signal_group(signal.SIGKILL)
        if self._proc is not None:
            self._proc.wait()
        _live.discard(self)

    def stop(self, grace: float | None = None) -> None:
        stop_all([self], grace if grace is not None else self.grace)

    def _finish(self, deadline: float) -> None:
        assert self._proc is not None
        try:
            self._proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("process ignored SIGTERM, killing it", name=self.name, pid=self._proc.pid)
            self.signal_group(signal.SIGKILL)
            self._proc.wait()
        # The leader is gone; sweep anything it left in its group.
        self.signal_group(signal.SIGKILL)
        _live.discard(self)


def stop_all(processes: Sequence[ManagedProcess], grace: float = 10.0) -> None:
    """SIGTERM every group at once, then wait for all of them within one shared grace period."""
    # Only groups whose leader is alive now: a reaped leader's pid (= group id) may since belong to a stranger.
    running = [p for p in processes if p.alive()]
    for p in processes:
        if p not in running:
            _live.discard(p)
    for p in running:
        p.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in running:
        p._finish(deadline)


@atexit.register
def _stop_leftovers() -> None:
    # Last line of defence when a caller forgot stop() or crashed before reaching it.
    stop_all(list(_live), grace=5.0)
