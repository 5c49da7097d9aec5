"""Free loopback ports for servers started on demand (tests, a second stack beside a running one)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

LOOPBACK = "127.0.0.1"

# Ports handed out, host-wide: the OS offers a free port to whoever asks, so two processes (test
# workers, a stack and the tests around it) could be given the same one before either server binds it.
# Each process records what it hands out in one registry, under a lock; an entry lapses when its process
# is gone or after CLAIM_SECONDS, long enough for a server to bind its port.
_REGISTRY = Path(tempfile.gettempdir()) / f"pressroom-ports-{os.getuid()}.json"
CLAIM_SECONDS = 300.0
_lock = threading.Lock()


def is_free(port: int, host: str = LOOPBACK) -> bool:
    if not 0 < port < 65536:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers do: connections of a stopped server lingering in TIME_WAIT do not hold the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = LOOPBACK, *, preferred: int | None = None, paired_offset: int | None = None) -> int:
    """A port nothing listens on and no process on this host was given. `preferred` is used when free;
    with `paired_offset`, port + offset is free too (SeaweedFS derives its gRPC ports as HTTP port +
    10000 and some of its clients assume it)."""
    with _claims() as claims:
        # A preferred port (a default, or one a stack kept) may come back to the process that had it
        # after its server stopped: free now, and nobody else's, is all that counts.
        if preferred and _usable(preferred, host, paired_offset, claims, mine_ok=True):
            claims.take(preferred, paired_offset)
            return preferred
        for _ in range(200):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
            if _usable(port, host, paired_offset, claims, mine_ok=False):
                claims.take(port, paired_offset)
                return port
    raise RuntimeError(f"no free port found on {host}")


def reserve(port: int) -> None:
    """A port this process is told to use (a configured one, free until its server binds it): no other
    piece or process is given it by free_port()."""
    with _claims() as claims:
        claims.take(port, None)


class _Claims:
    """The ports handed out on this host and by whom, {port: (pid, when)}, without lapsed entries."""

    def __init__(self, entries: object) -> None:
        now = time.time()
        self.entries: dict[str, tuple[int, float]] = {}
        for port, entry in entries.items() if isinstance(entries, dict) else ():
            with contextlib.suppress(TypeError, ValueError, IndexError):
                pid, at = int(entry[0]), float(entry[1])
                if now - at < CLAIM_SECONDS and _alive(pid):
                    self.entries[str(port)] = (pid, at)

    def holder(self, port: int) -> int | None:
        entry = self.entries.get(str(port))
        return entry[0] if entry else None

    def take(self, port: int, paired_offset: int | None) -> None:
        for taken in (port, port + paired_offset) if paired_offset else (port,):
            self.entries[str(taken)] = (os.getpid(), time.time())


@contextlib.contextmanager
def _claims() -> Iterator[_Claims]:
    """The host's registry of handed-out ports, locked for this process while it chooses."""
    with _lock, open(_REGISTRY.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            entries = json.loads(_REGISTRY.read_text())
        except (OSError, ValueError):
            entries = {}
        claims = _Claims(entries)
        yield claims
        scratch = _REGISTRY.with_suffix(f".{os.getpid()}.tmp")
        scratch.write_text(json.dumps(claims.entries))
        scratch.replace(_REGISTRY)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def _usable(port: int, host: str, paired_offset: int | None, claims: _Claims, *, mine_ok: bool) -> bool:
    ports = (port, port + paired_offset) if paired_offset else (port,)
    for candidate in ports:
        holder = claims.holder(candidate)
        if holder is not None and not (mine_ok and holder == os.getpid()):
            return False
        if not is_free(candidate, host):
            return False
    return True


def load_ports(path: Path) -> dict[str, object]:
    """The ports a stack chose before (kept with its data), so outside clients keep their settings."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_ports(path: Path, ports: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ports, indent=2, sort_keys=True) + "\n")
