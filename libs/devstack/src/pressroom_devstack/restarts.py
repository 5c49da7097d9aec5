"""The restart policy shared by everything `pressroom up` supervises: service replicas (services.py) and
the embedded servers it started (supervision.py).

A process that exited is started again after an exponential backoff: RESTART_BACKOFF doubling up to
RESTART_BACKOFF_MAX for every exit in a row that came within STABLE_AFTER seconds of its start, back to
RESTART_BACKOFF once it has stayed up that long. With `give_up_after`, the exit that follows that many
quick exits in a row leaves it down for good: a process that cannot stay up is reported, not started in
a loop forever.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

RESTART_BACKOFF = 0.5
RESTART_BACKOFF_MAX = 30.0
STABLE_AFTER = 30.0


@dataclass
class Backoff:
    """The policy's memory of one supervised process."""

    give_up_after: int | None = None  # quick exits in a row tolerated; None: never give up
    started_at: float = field(default_factory=time.monotonic)
    restarts: int = 0
    failures: int = 0  # exits in a row without staying up STABLE_AFTER seconds: the backoff exponent
    restart_at: float | None = None  # exited: when to start it again
    given_up: bool = False

    @property
    def waiting(self) -> bool:
        """Its exit was noticed and a restart is scheduled."""
        return self.restart_at is not None

    def exited(self, now: float) -> float | None:
        """Records an exit (or a failed start) noticed at `now`. Returns the delay before the next start,
        or None when the policy gives up on it."""
        stable = now - self.started_at >= STABLE_AFTER
        self.failures = 0 if stable else self.failures + 1
        if self.give_up_after is not None and self.failures > self.give_up_after:
            self.given_up, self.restart_at = True, None
            return None
        delay = min(RESTART_BACKOFF_MAX, RESTART_BACKOFF * 2 ** max(0, self.failures - 1))
        self.restart_at = now + delay
        return delay

    def due(self, now: float) -> bool:
        return self.restart_at is not None and now >= self.restart_at

    def restarted(self) -> None:
        """Started again: counts the restart; the process has to stay up from now on to count as stable."""
        self.restarts += 1
        self.restart_at = None
        self.started_at = time.monotonic()
