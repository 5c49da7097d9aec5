"""Keeps the embedded servers of a running stack up: nats-server (or each node of the embedded cluster),
PostgreSQL, the S3 server and the model server.

Like the services (services.py), this is a restart policy driven from the owner's loop, not a process
manager: heal() notices a server that died, says so, and after the shared backoff (restarts.Backoff)
starts it again in place. Each piece's start() reuses what it was given the first time: its data
directory, its ports and its credentials, so the services (which reconnect by themselves) find it where
it was. A server that keeps dying right after each start is given up on, and heal() says that too.

Restarts run on the caller's thread and wait for the server's health check (bounded by its own start-up
timeout): a restarted server counts as back only once it answers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import structlog

from .errors import StartupError
from .restarts import Backoff

log = structlog.get_logger(__name__)

GIVE_UP_AFTER = 5  # quick deaths in a row (0.5 + 1 + 2 + 4 + 8 s of waiting) before a server is left down


class Server(Protocol):
    """What supervision needs of a piece: NatsServer, Postgres, SeaweedS3, LocalModel."""

    log_path: Path

    @property
    def pid(self) -> int | None: ...

    def running(self) -> bool: ...

    def start(self) -> object: ...

    def stop(self) -> None: ...


@dataclass
class Watched:
    name: str  # as the console and `pressroom status` say it: "nats", "nats node-1", "postgres" ...
    server: Server
    backoff: Backoff = field(default_factory=lambda: Backoff(give_up_after=GIVE_UP_AFTER))

    def describe(self) -> dict[str, object]:
        """For the stack's state file."""
        return {"restarts": self.backoff.restarts, "given_up": self.backoff.given_up}


@dataclass
class ServerSupervisor:
    watched: list[Watched] = field(default_factory=list)
    stopped: bool = False

    def watch(self, name: str, server: Server) -> None:
        self.watched.append(Watched(name, server))

    def heal(self, now: float | None = None) -> list[str]:
        """One pass of the restart policy over every server; returns what it did, one line per event."""
        if self.stopped:
            return []
        now = time.monotonic() if now is None else now
        notes: list[str] = []
        for item in self.watched:
            backoff = item.backoff
            if backoff.given_up or (not backoff.waiting and item.server.running()):
                continue
            if not backoff.waiting:
                notes.append(self._died(item, now, "died"))
            elif backoff.due(now):
                notes.append(self._restart(item))
        return notes

    def _died(self, item: Watched, now: float, what: str) -> str:
        delay = item.backoff.exited(now)
        if delay is None:
            log.error("server given up", piece=item.name, restarts=item.backoff.restarts)
            return (
                f"{item.name} {what} again right after restart {item.backoff.restarts}; giving up on it"
                f" (see {item.server.log_path}); stop and start the stack once it is fixed"
            )
        log.warning("server down", piece=item.name, restart_in=delay)
        return (
            f"{item.name} {what}; restarting it in {delay:.1f}s with the same data, port and credentials"
            f" (see {item.server.log_path})"
        )

    def _restart(self, item: Watched) -> str:
        item.backoff.restarted()
        try:
            item.server.stop()  # what the dead one left behind: a stale handle, a socket folder
            item.server.start()
        except Exception as exc:  # whatever it was, the loop goes on and the backoff paces the next try
            item.server.stop()
            reason = exc.reason if isinstance(exc, StartupError) else f"{type(exc).__name__}: {exc}"
            return self._died(item, time.monotonic(), f"failed to restart ({reason})")
        log.warning("server restarted", piece=item.name, restarts=item.backoff.restarts)
        return f"{item.name} restarted (pid {item.server.pid}, restart {item.backoff.restarts})"

    def describe(self) -> dict[str, dict[str, object]]:
        return {item.name: item.describe() for item in self.watched}
