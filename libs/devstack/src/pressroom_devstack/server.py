"""What the embedded servers (NATS, SeaweedFS, the model server) share: one managed child process that
counts as started only once it answers its health check."""

from __future__ import annotations

import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

from .health import wait_until
from .process import ManagedProcess


class ServerProcess:
    piece = "server"
    health_interval = 0.2

    def __init__(self, log_path: Path, startup_timeout: float) -> None:
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self._process: ManagedProcess | None = None

    def healthy(self) -> bool:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def running(self) -> bool:
        return self._process is not None and self._process.alive()

    def _launch(
        self,
        argv: Sequence[object],
        *,
        env: Mapping[str, str] | None = None,
        grace: float = 10.0,
        wait: bool = True,
    ) -> None:
        """Starts the process and (unless `wait` is false) waits until healthy; on any failure it is
        stopped again."""
        self._process = ManagedProcess(
            self.piece, [str(a) for a in argv], self.log_path, env=env, grace=grace
        )
        self._process.start()
        if not wait:
            return
        try:
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise

    def wait_healthy(self) -> None:
        process = self._process
        wait_until(
            self.healthy,
            piece=self.piece,
            timeout=self.startup_timeout,
            log_path=self.log_path,
            alive=process.alive if process else None,
            interval=self.health_interval,
        )

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None

    def freeze(self) -> None:
        """SIGSTOP, for fault tests: alive with its connections open, answering nothing until thaw()."""
        if self._process is not None:
            self._process.signal_group(signal.SIGSTOP)

    def thaw(self) -> None:
        if self._process is not None:
            self._process.signal_group(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL, for fault tests; start() brings it back on the same ports and data."""
        if self._process is not None:
            self._process.kill()
            self._process = None
