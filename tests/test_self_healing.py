"""`pressroom up` heals itself: every service killed with kill -9 comes back by itself, `pressroom status`
shows each piece healthy again, and a job then runs through to the end. The embedded nats-server killed
with kill -9 comes back on its port with its streams, and the services, reconnected by themselves, run
the next job."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import psutil
import pytest
import websockets

from pipeline import TERMINAL_TYPES, script_pipeline
from pressroom_devstack.env import without_contract
from pressroom_devstack.ports import free_port
from pressroom_devstack.services import SERVICES

pytestmark = pytest.mark.slow


@pytest.fixture
def home() -> Iterator[Path]:
    # Outside pytest's tmp folder: the embedded PostgreSQL must traverse every parent (see the fixtures).
    path = Path(tempfile.mkdtemp(prefix="pressroom-heal-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pressroom_devstack.cli", *args],
        env={**env, "COLUMNS": "220"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _state(home: Path) -> dict:
    return json.loads((home / "stack.json").read_text())


def _wait(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


async def _job_completes(gateway_url: str, token: str) -> str:
    url = f"{gateway_url.replace('http', 'ws', 1)}/v1/ws?token={token}"
    request = {"topic": "Heat pumps in old houses", "platforms": ["linkedin"], "image": False}
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "start", "request": request, "ref": "r1"}))
        async with asyncio.timeout(120):
            while True:
                frame = json.loads(await ws.recv())
                assert frame["type"] != "error", frame
                if frame["type"] == "event" and frame["event"]["type"] in TERMINAL_TYPES:
                    return str(frame["event"]["type"])


def _env(home: Path, scripted_llm) -> dict[str, str]:
    script_pipeline(scripted_llm)
    return {
        **without_contract(os.environ),
        "PRESSROOM_HOME": str(home),
        "PRESSROOM_GATEWAY_PORT": str(free_port()),
        "OPENAI_BASE_URL": scripted_llm.base_url,
        "OPENAI_API_KEY": "test",
        "PRESSROOM_LLM_MODEL": scripted_llm.model,
    }


def _up(env: dict[str, str], output: list[str]) -> subprocess.Popen[str]:
    """`pressroom up`, read until it runs; its lines go to `output`."""
    up = subprocess.Popen(
        [sys.executable, "-m", "pressroom_devstack.cli", "up"],
        env={**env, "COLUMNS": "220"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert up.stdout is not None
    while not any("Running." in line for line in output):
        line = up.stdout.readline()
        if not line:
            up.wait(timeout=30)
            raise AssertionError("pressroom up exited:\n" + "".join(output))
        output.append(line)
    return up


def _down(up: subprocess.Popen[str], output: list[str]) -> str:
    up.send_signal(signal.SIGTERM)
    rest, _ = up.communicate(timeout=90)
    output.append(rest)
    said = "".join(output)
    assert up.returncode == 0, said
    return said


def test_every_service_killed_comes_back_and_a_job_completes(home: Path, scripted_llm) -> None:
    env = _env(home, scripted_llm)
    output: list[str] = []
    up = _up(env, output)
    try:
        before = _state(home)["processes"]
        assert sorted(before) == sorted(f"{s}-0" for s in SERVICES)
        for replica in before.values():
            os.kill(replica["pid"], signal.SIGKILL)

        def all_back() -> dict | None:
            now = _state(home)["processes"]
            restarted = all(now[name]["pid"] != before[name]["pid"] for name in before)
            return now if restarted and _cli(env, "status").returncode == 0 else None

        after = _wait(all_back, 120, "every service to be restarted and healthy")
        assert all(replica["restarts"] == 1 for replica in after.values())
        status = _cli(env, "status")
        for piece in ("NATS", "PostgreSQL", "S3", *after):
            assert piece in status.stdout
        assert "down" not in status.stdout and "restarted 1x" in status.stdout

        state = _state(home)
        assert asyncio.run(_job_completes(state["gateway_url"], state["api_key"])) == "job.completed"
    finally:
        said = _down(up, output)
    for name in before:
        assert f"{name} exited (-9); restarting in" in said
        assert f"{name} restarted (pid" in said


def _nats_server(home: Path) -> psutil.Process:
    (proc,) = [
        p for p in psutil.process_iter(["name", "cmdline"]) if str(home / "nats") in (p.info["cmdline"] or [])
    ]
    return proc


async def _stored(admin_url: str) -> int:
    nc = await nats.connect(admin_url, allow_reconnect=False)
    try:
        return int((await nc.jetstream().stream_info("CONTENT")).state.messages)
    finally:
        await nc.close()


def test_the_killed_nats_server_comes_back_with_its_stream_and_jobs_go_on(home: Path, scripted_llm) -> None:
    env = _env(home, scripted_llm)
    output: list[str] = []
    up = _up(env, output)
    try:
        state = _state(home)
        assert asyncio.run(_job_completes(state["gateway_url"], state["api_key"])) == "job.completed"
        stored = asyncio.run(_stored(state["nats_admin_url"]))
        assert stored > 0
        services = {name: replica["pid"] for name, replica in state["processes"].items()}

        victim = _nats_server(home)
        victim.kill()  # kill -9, behind the supervisor's back
        port = int(state["nats_url"].rsplit(":", 1)[1])

        def back() -> psutil.Process | None:
            if "nats" not in _state(home).get("servers", {}) or _cli(env, "status").returncode != 0:
                return None
            again = _nats_server(home)
            return again if again.pid != victim.pid else None

        again = _wait(back, 120, "nats-server to be restarted and every piece healthy again")
        assert any(
            c.laddr.port == port for c in again.net_connections("tcp") if c.status == psutil.CONN_LISTEN
        )
        state = _state(home)
        assert state["servers"]["nats"] == {"restarts": 1, "given_up": False}
        assert "embedded, restarted 1x" in _cli(env, "status").stdout
        assert asyncio.run(_stored(state["nats_admin_url"])) == stored  # JetStream's files kept the stream
        # The services reconnected by themselves: none was restarted.
        assert {name: replica["pid"] for name, replica in state["processes"].items()} == services
        assert all(replica["restarts"] == 0 for replica in state["processes"].values())
        assert asyncio.run(_job_completes(state["gateway_url"], state["api_key"])) == "job.completed"
    finally:
        said = _down(up, output)
    assert "nats died; restarting it in 0.5s with the same data, port and credentials" in said
    assert "nats restarted (pid" in said
