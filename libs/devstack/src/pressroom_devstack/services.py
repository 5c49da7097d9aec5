"""Starts Pressroom's services as child processes (N replicas each), waits for their health checks and,
when asked to heal, restarts any replica that exits.

Every replica is `python -m pressroom_<name>` with the stack's env plus its identity:
PRESSROOM_REPLICA=<name>-<i> and its own PRESSROOM_HEALTH_PORT, answering GET /healthz with a 2xx once
its broker is connected. The gateway also listens on PRESSROOM_GATEWAY_HOST:PRESSROOM_GATEWAY_PORT.

Healing is a restart policy, not a process manager: supervisord backs off only for processes that die
within `startsecs` and gives up for good after `startretries`, and circus brings ZeroMQ and a daemon;
both would also replace the process groups and parent-death signal of process.py. So heal() is called
from the owner's loop (on the main thread, where the parent-death signal can be armed): an exited
replica is started again on the same ports after an exponential backoff (RESTART_BACKOFF doubling to
RESTART_BACKOFF_MAX), reset once it has stayed up for STABLE_AFTER seconds: restarts.Backoff, the policy
the embedded servers get too (supervision.py). A replica is never given up on: it may only be waiting for a server to come back.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from .errors import StartupError
from .health import http_ok
from .natsauth import NatsUsers
from .ports import LOOPBACK, free_port
from .process import ManagedProcess, stop_all
from .restarts import Backoff

log = structlog.get_logger(__name__)

SERVICES: tuple[str, ...] = ("persistence", "research", "writer", "social", "illustrator", "gateway")
DEFAULT_GATEWAY_PORT = 8000


@dataclass
class Replica:
    service: str
    index: int
    health_port: int
    process: ManagedProcess
    gateway_port: int | None = None  # only for the gateway
    backoff: Backoff = field(default_factory=Backoff)  # when heal() starts it again once it exited

    @property
    def started_at(self) -> float:
        return self.backoff.started_at

    @property
    def restarts(self) -> int:
        return self.backoff.restarts

    @property
    def name(self) -> str:
        return f"{self.service}-{self.index}"

    @property
    def health_url(self) -> str:
        # The gateway's own port is the one clients use, so that is the one that must answer.
        port = self.gateway_port if self.gateway_port is not None else self.health_port
        return f"http://{LOOPBACK}:{port}/healthz"

    @property
    def url(self) -> str | None:
        return f"http://{LOOPBACK}:{self.gateway_port}" if self.gateway_port is not None else None

    def healthy(self) -> bool:
        return self.process.alive() and http_ok(self.health_url)

    def describe(self) -> dict[str, object]:
        """For the stack's state file: what `pressroom status` checks."""
        return {"pid": self.process.pid, "health_url": self.health_url, "restarts": self.restarts}


@dataclass
class ServiceSupervisor:
    env: Mapping[str, str]
    log_dir: Path
    gateway_port: int = DEFAULT_GATEWAY_PORT
    startup_timeout: float = 60.0
    grace: float = 10.0
    nats_users: NatsUsers | None = None  # each service connects as its own NATS user
    replicas: dict[tuple[str, int], Replica] = field(default_factory=dict)
    stopped: bool = False

    def start(
        self,
        services: Iterable[str] = SERVICES,
        replicas: Mapping[str, int] | None = None,
        *,
        wait: bool = True,
    ) -> None:
        """Starts every replica of every service, then waits until all are healthy (in parallel)."""
        counts = dict(replicas or {})
        unknown = set(counts) - set(SERVICES)
        if unknown:
            raise ValueError(f"unknown service(s) {sorted(unknown)}; known: {', '.join(SERVICES)}")
        started: list[Replica] = []
        for service in services:
            for index in range(counts.get(service, 1)):
                started.append(self._spawn(service, index))
        if wait:
            self.wait_healthy(started)

    def heal(self, now: float | None = None) -> list[str]:
        """One pass of the restart policy; returns what it did, one line per event, for the owner to say."""
        if self.stopped:
            return []
        now = time.monotonic() if now is None else now
        notes: list[str] = []
        for replica in list(self.replicas.values()):
            if replica.process.alive():
                continue
            if not replica.backoff.waiting:
                delay = replica.backoff.exited(now)
                notes.append(
                    f"{replica.name} exited ({replica.process.returncode}); restarting in {delay or 0:.1f}s"
                    f" (see {replica.process.log_path})"
                )
            elif replica.backoff.due(now):
                again = self._spawn(replica.service, replica.index, replica)
                again.backoff = replica.backoff
                again.backoff.restarted()
                notes.append(f"{again.name} restarted (pid {again.process.pid}, restart {again.restarts})")
                log.warning("service restarted", replica=again.name, restarts=again.restarts)
        return notes

    def _spawn(self, service: str, index: int, previous: Replica | None = None) -> Replica:
        health_port = previous.health_port if previous else free_port()
        env = {
            # In-flight messages are handed back (NAKed) well within the stop's grace, so a stop never has
            # to kill a service waiting on a slow model call; the next start picks them up again.
            "PRESSROOM_DRAIN_SECONDS": f"{self.grace / 2:g}",
            **self.env,
            "PRESSROOM_REPLICA": f"{service}-{index}",
            "PRESSROOM_HEALTH_HOST": LOOPBACK,
            "PRESSROOM_HEALTH_PORT": str(health_port),
            "PYTHONUNBUFFERED": "1",
            **(self.nats_users.service_env(service) if self.nats_users else {}),
        }
        gateway_port: int | None = None
        if service == "gateway":
            # Replica 0 takes the configured port; any extra gateway replica gets a free one.
            gateway_port = (
                previous.gateway_port if previous else (int(self.gateway_port) if index == 0 else free_port())
            )
            env["PRESSROOM_GATEWAY_HOST"] = env.get("PRESSROOM_GATEWAY_HOST", LOOPBACK)
            env["PRESSROOM_GATEWAY_PORT"] = str(gateway_port)
        process = ManagedProcess(
            f"{service}-{index}",
            [sys.executable, "-m", f"pressroom_{service}"],
            self.log_dir / f"{service}-{index}.log",
            env=env,
            grace=self.grace,
        )
        process.start()
        replica = Replica(service, index, health_port, process, gateway_port)
        self.replicas[(service, index)] = replica
        log.info("service started", replica=replica.name, pid=process.pid)
        return replica

    def wait_healthy(self, replicas: Iterable[Replica] | None = None, timeout: float | None = None) -> None:
        pending = list(self.replicas.values() if replicas is None else replicas)
        deadline = time.monotonic() + (timeout or self.startup_timeout)
        while pending:
            for replica in list(pending):
                if replica.healthy():
                    pending.remove(replica)
                elif not replica.process.alive():
                    raise StartupError(replica.name, "exited during start-up", replica.process.log_path)
            if pending and time.monotonic() >= deadline:
                first = pending[0]
                names = ", ".join(r.name for r in pending)
                raise StartupError(
                    names, f"not healthy after {timeout or self.startup_timeout:.0f}s", first.process.log_path
                )
            if pending:
                time.sleep(0.1)

    def get(self, service: str, index: int = 0) -> Replica:
        try:
            return self.replicas[(service, index)]
        except KeyError:
            raise KeyError(f"no replica {service}-{index} was started") from None

    def kill(self, service: str, index: int = 0) -> None:
        """SIGKILL one replica (a crash, for fault tests)."""
        self.get(service, index).process.kill()

    def restart(self, service: str, index: int = 0, *, wait: bool = True) -> Replica:
        """Starts the replica again with the same identity and ports (stopping it first if it runs)."""
        previous = self.get(service, index)
        previous.process.stop()
        replica = self._spawn(service, index, previous)
        if wait:
            self.wait_healthy([replica])
        return replica

    def add_replica(self, service: str, *, wait: bool = True) -> Replica:
        index = 1 + max((i for s, i in self.replicas if s == service), default=-1)
        replica = self._spawn(service, index)
        if wait:
            self.wait_healthy([replica])
        return replica

    def stop(self) -> None:
        self.stopped = True
        stop_all([r.process for r in self.replicas.values()], self.grace)

    @property
    def gateway_url(self) -> str | None:
        replica = self.replicas.get(("gateway", 0))
        return replica.url if replica else None
