"""Fixtures for the devstack's own tests: stand-in services and a stack home outside pytest's tmp."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pressroom_devstack.env import without_contract
from pressroom_devstack.services import SERVICES

FAKE_MAIN = textwrap.dedent(
    """
    import json, os, signal, sys, threading, time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    replica = os.environ["PRESSROOM_REPLICA"]
    if os.environ.get("FAKE_CRASH") == replica:
        sys.exit("crashing on purpose")
    out = os.environ.get("FAKE_ENV_DIR")
    if out:
        with open(os.path.join(out, replica + ".json"), "w") as f:
            json.dump({**os.environ, "PID": str(os.getpid())}, f)
    if os.environ.get("FAKE_IGNORE_TERM") == replica:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))

    class Health(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()
            self.wfile.write(replica.encode())
        def log_message(self, *args):
            pass

    ports = [int(os.environ["PRESSROOM_HEALTH_PORT"])]
    if replica.startswith("gateway-"):
        ports.append(int(os.environ["PRESSROOM_GATEWAY_PORT"]))
    time.sleep(float(os.environ.get("FAKE_START_DELAY", "0")))
    for port in ports:
        server = ThreadingHTTPServer(("127.0.0.1", port), Health)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("fake", replica, "ready", flush=True)
    while True:
        time.sleep(1)
    """
)


class FakeServices:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.env_dir = Path(env["FAKE_ENV_DIR"])

    def seen_env(self, replica: str) -> dict[str, str]:
        """The environment replica `replica` (e.g. writer-0) was started with (its last start)."""
        return json.loads((self.env_dir / f"{replica}.json").read_text())

    def live_pids(self) -> list[int]:
        pids = [int(json.loads(p.read_text())["PID"]) for p in self.env_dir.glob("*.json")]
        return [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]


@pytest.fixture
def fake_services(fake_env: dict[str, str]) -> FakeServices:
    return FakeServices(fake_env)


@pytest.fixture
def fake_env(tmp_path: Path) -> dict[str, str]:
    """Env that makes `python -m pressroom_<name>` run the stand-in; FAKE_ENV_DIR receives each one's env."""
    root = tmp_path / "fakes"
    for name in SERVICES:
        package = root / f"pressroom_{name}"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "__main__.py").write_text(FAKE_MAIN)
    env_dir = tmp_path / "envs"
    env_dir.mkdir()
    pythonpath = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    return {
        **without_contract(os.environ),
        "PYTHONPATH": pythonpath,
        "FAKE_ENV_DIR": str(env_dir),
        "NATS_URL": "nats://127.0.0.1:1",
    }


def seen_env(fake_env: dict[str, str], replica: str) -> dict[str, str]:
    return json.loads((Path(fake_env["FAKE_ENV_DIR"]) / f"{replica}.json").read_text())


@pytest.fixture
def stack_home() -> Iterator[Path]:
    """PRESSROOM_HOME for a stack test. Outside pytest's tmp folder: see PG_TEST_ROOT in the fixtures."""
    home = Path(tempfile.mkdtemp(prefix="pressroom-home-"))
    yield home
    shutil.rmtree(home, ignore_errors=True)
