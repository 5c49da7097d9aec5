"""Starts services as subprocesses for a test and guarantees they are gone at teardown."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from pathlib import Path

import nats

from pressroom_devstack.natsauth import NatsUsers
from pressroom_devstack.ports import free_port
from pressroom_devstack.provisioning import provision_nats, run_sync
from pressroom_devstack.services import SERVICES, Replica, ServiceSupervisor
from pressroom_runtime.apikeys import create_key
from pressroom_runtime.broker import nats_servers


class ServiceRunner:
    """`start("writer", "persistence")` with the env the fixtures built; kill/restart for fault tests."""

    def __init__(
        self,
        env: Mapping[str, str],
        log_dir: Path,
        *,
        admin_url: str | None = None,
        nats_users: NatsUsers | None = None,
        stream_replicas: int = 1,
        startup_timeout: float = 60.0,
    ) -> None:
        """`admin_url`: NATS with the admin's credentials (provisioning, keys), default env's NATS_URL;
        `nats_users`: each service connects as its own user; `stream_replicas`: 3 on a cluster."""
        self.env = dict(env)
        self.admin_url = admin_url or self.env["NATS_URL"]
        self.nats_users = nats_users
        self.stream_replicas = stream_replicas
        self.log_dir = log_dir
        self.startup_timeout = startup_timeout
        self.supervisors: list[ServiceSupervisor] = []

    def start(
        self,
        *services: str,
        replicas: Mapping[str, int] | None = None,
        env: Mapping[str, str] | None = None,
        provision: bool = True,
        wait: bool = True,
    ) -> ServiceSupervisor:
        """Starts the named services (all of them when none is named) and waits until they are healthy."""
        names: Iterable[str] = services or SERVICES
        full_env = {**self.env, **(env or {})}
        if provision:
            provision_nats(self.admin_url, self.stream_replicas)
        supervisor = ServiceSupervisor(
            full_env,
            self.log_dir,
            gateway_port=free_port(),
            startup_timeout=self.startup_timeout,
            grace=5.0,
            nats_users=self.nats_users,
        )
        self.supervisors.append(supervisor)
        supervisor.start(names, replicas, wait=wait)
        return supervisor

    def _find(self, service: str, index: int) -> tuple[ServiceSupervisor, Replica]:
        for supervisor in reversed(self.supervisors):
            if (service, index) in supervisor.replicas:
                return supervisor, supervisor.replicas[(service, index)]
        raise KeyError(f"no replica {service}-{index} was started")

    def replica(self, service: str, index: int = 0) -> Replica:
        return self._find(service, index)[1]

    def kill(self, service: str, index: int = 0) -> None:
        supervisor, _ = self._find(service, index)
        supervisor.kill(service, index)

    def restart(self, service: str, index: int = 0, *, wait: bool = True) -> Replica:
        supervisor, _ = self._find(service, index)
        return supervisor.restart(service, index, wait=wait)

    @functools.cached_property
    def api_token(self) -> str:
        """A key of the test client "runner", accepted by the gateway of these services."""
        return run_sync(_create_key(self.admin_url, "runner"))

    @property
    def gateway_url(self) -> str | None:
        for supervisor in reversed(self.supervisors):
            if supervisor.gateway_url:
                return supervisor.gateway_url
        return None

    def stop(self) -> None:
        for supervisor in reversed(self.supervisors):
            supervisor.stop()
        self.supervisors.clear()


async def _create_key(nats_url: str, name: str) -> str:
    nc = await nats.connect(nats_servers(nats_url))
    try:
        token, _ = await create_key(nc, name)
        return token
    finally:
        await nc.close()
