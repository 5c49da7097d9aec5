"""Free loopback ports for servers started on demand (tests, a second stack beside a running one)."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

LOOPBACK = "127.0.0.1"

# Ports handed out recently: the OS may offer the same free port twice before the first
# caller's server binds it, so never hand one out twice from this process.
_handed_out: set[int] = set()
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
    """A port nothing listens on. `preferred` is used when free; with `paired_offset`, port + offset is free too
    (SeaweedFS derives its gRPC ports as HTTP port + 10000 and some of its clients assume it)."""
    with _lock:
        # A preferred port (a default, or one a stack kept) may come back to the same process after its
        # server stopped: free now is all that counts.
        if preferred and _usable(preferred, host, paired_offset):
            _handed_out.add(preferred)
            return preferred
        for _ in range(200):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
            if port not in _handed_out and _usable(port, host, paired_offset):
                _handed_out.add(port)
                return port
    raise RuntimeError(f"no free port found on {host}")


def reserve(port: int) -> None:
    """A port this process is told to use (a configured one, free until its server binds it): never
    handed out by free_port()."""
    with _lock:
        _handed_out.add(port)


def _usable(port: int, host: str, paired_offset: int | None) -> bool:
    if not is_free(port, host):
        return False
    if paired_offset is None:
        return True
    pair = port + paired_offset
    return pair not in _handed_out and is_free(pair, host)


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
