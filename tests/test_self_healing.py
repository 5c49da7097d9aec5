"""`pressroom up` heals itself: every service killed with kill -9 comes back by itself, `pressroom status`
shows each piece healthy again, and a job then runs through to the end."""

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


def test_every_service_killed_comes_back_and_a_job_completes(home: Path, scripted_llm) -> None:
    script_pipeline(scripted_llm)
    env = {
        **without_contract(os.environ),
        "PRESSROOM_HOME": str(home),
        "PRESSROOM_GATEWAY_PORT": str(free_port()),
        "OPENAI_BASE_URL": scripted_llm.base_url,
        "OPENAI_API_KEY": "test",
        "PRESSROOM_LLM_MODEL": scripted_llm.model,
    }
    up = subprocess.Popen(
        [sys.executable, "-m", "pressroom_devstack.cli", "up"],
        env={**env, "COLUMNS": "220"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        assert up.stdout is not None
        while not any("Running." in line for line in output):
            line = up.stdout.readline()
            assert line, "pressroom up exited:\n" + "".join(output)
            output.append(line)

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
        up.send_signal(signal.SIGTERM)
        rest, _ = up.communicate(timeout=90)
        output.append(rest)
    said = "".join(output)
    assert up.returncode == 0, said
    for name in before:
        assert f"{name} exited (-9); restarting in" in said
        assert f"{name} restarted (pid" in said
