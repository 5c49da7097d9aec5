"""The whole embedded stack (with stand-in services) and the `pressroom` command."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import httpx
import nats
import pytest

from pressroom_devstack.config import StackConfig
from pressroom_devstack.errors import StartupError
from pressroom_devstack.objectstore import S3Info
from pressroom_devstack.ports import free_port
from pressroom_devstack.stack import Stack
from pressroom_testkit import ScriptedLLM
from pressroom_testkit.processes import assert_gone

if TYPE_CHECKING:
    from conftest import FakeServices  # only for the annotations: conftest is not importable at run time


@pytest.fixture
def stack_env(fake_services: FakeServices, stack_home: Path, scripted_llm: ScriptedLLM) -> dict[str, str]:
    env = {k: v for k, v in fake_services.env.items() if k != "NATS_URL"}  # the stack starts its own
    return {
        **env,
        "PRESSROOM_HOME": str(stack_home),
        "PRESSROOM_GATEWAY_PORT": str(free_port()),
        "OPENAI_BASE_URL": scripted_llm.base_url,  # keeps the real model out of these tests
        "OPENAI_API_KEY": "test",
        "TAVILY_API_KEY": "tvly-test",
    }


async def _sql(url: str, statement: str) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(statement)
    finally:
        await conn.close()


def test_stack_starts_everything_and_a_second_start_reuses_the_data(
    stack_env: dict[str, str], stack_home: Path, fake_services: FakeServices
) -> None:
    stack = Stack(StackConfig.from_env(stack_env))
    with stack:
        info = stack.start(replicas={"writer": 2})
        assert info.started == ["nats", "postgres", "s3", "services"]
        assert info.gateway_url == f"http://127.0.0.1:{stack_env['PRESSROOM_GATEWAY_PORT']}"
        env = fake_services.seen_env("writer-1")
        assert env["NATS_URL"] == info.nats_url and env["DATABASE_URL"] == info.database_url
        assert env["S3_ENDPOINT"] == info.s3["endpoint"] and env["S3_ACCESS_KEY"] == info.s3["access_key"]
        assert env["S3_BUCKET"] == "pressroom-images"
        assert env["OPENAI_BASE_URL"] == stack_env["OPENAI_BASE_URL"] and env["OPENAI_API_KEY"] == "test"
        assert "PRESSROOM_LLM_PROFILE" not in env  # an external model keeps the service's defaults
        assert env["TAVILY_API_KEY"] == "tvly-test"
        assert env["PRESSROOM_HOME"] == str(stack_home)
        knowledge = Path(env["PRESSROOM_KNOWLEDGE_DIR"])
        assert knowledge == stack_home / "knowledge" and len(list(knowledge.glob("*.md"))) == 3
        assert "/pressroom?" in info.database_url

        for secret_file in (stack_home / "stack.json", stack_home / "s3" / "credentials.json"):
            assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        assert json.loads((stack_home / "stack.json").read_text())["nats_url"] == info.nats_url

        asyncio.run(_sql(info.database_url, "CREATE TABLE kept AS SELECT 42 AS answer"))
        s3 = S3Info(**info.s3)
        s3.client().put_object(s3.bucket, "kept.txt", io.BytesIO(b"still here"), 10)

        with pytest.raises(StartupError, match="already runs"):
            _other_process_claims(stack_home)
    assert_gone(stack_home)
    assert fake_services.live_pids() == []
    assert not (stack_home / "stack.json").exists()

    again = Stack(StackConfig.from_env(stack_env))
    with again:
        info2 = again.start(services=False)
        # Same addresses as before (kept in ports.json), so outside clients keep their settings.
        assert (info2.nats_url, info2.s3["endpoint"]) == (info.nats_url, info.s3["endpoint"])
        kept = json.loads((stack_home / "ports.json").read_text())
        assert info2.nats_url.endswith(f":{kept['nats']}") and info2.s3["endpoint"].endswith(f":{kept['s3']}")
        assert info2.s3["secret_key"] == info.s3["secret_key"]
        _outside_subscriber_reads_with_the_printed_credentials(stack_env, info2.nats_url)
        assert asyncio.run(_sql(info2.database_url, "SELECT answer FROM kept")) == 42
        s3 = S3Info(**info2.s3)
        assert s3.client().get_object(s3.bucket, "kept.txt").read() == b"still here"
    assert_gone(stack_home)


def _outside_subscriber_reads_with_the_printed_credentials(env: dict[str, str], nats_url: str) -> None:
    """`pressroom env` prints the read-only NATS user; with it a client reads the stream and publishes nothing."""
    printed = subprocess.run(
        [sys.executable, "-m", "pressroom_devstack.cli", "env"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    exports = dict(line.removeprefix("export ").split("=", 1) for line in printed.splitlines())
    assert exports["NATS_URL"] == nats_url and exports["NATS_USER"] == "reader"
    assert "admin" not in printed

    async def read_only() -> None:
        errors: list[str] = []

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc))

        nc = await nats.connect(
            exports["NATS_URL"],
            user=exports["NATS_USER"],
            password=exports["NATS_PASSWORD"],
            inbox_prefix=exports["NATS_INBOX_PREFIX"],
            error_cb=on_error,
        )
        try:
            info = await nc.jetstream().stream_info("CONTENT")
            assert info.config.name == "CONTENT"
            await nc.publish("content.job1.job.requested", b"{}")
            await nc.flush()
            async with asyncio.timeout(5):
                while not any("permissions violation" in e for e in errors):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        finally:
            await nc.close()

    asyncio.run(read_only())


def _other_process_claims(home: Path) -> None:
    """A stack started by another live process from the same home is refused."""
    state = json.loads((home / "stack.json").read_text())
    state["pid"] = os.getppid()
    (home / "stack.json").write_text(json.dumps(state))
    Stack(StackConfig.from_env({"PRESSROOM_HOME": str(home)})).start()


def test_nats_cluster_of_three_with_the_stream_on_every_node(
    stack_env: dict[str, str], stack_home: Path
) -> None:
    with Stack(StackConfig.from_env({**stack_env, "PRESSROOM_NATS_CLUSTER": "3"})) as stack:
        info = stack.start(services=False)
        urls = info.nats_url.split(",")
        assert len(urls) == 3 and all(url.startswith("nats://127.0.0.1:") for url in urls)
        assert json.loads((stack_home / "ports.json").read_text())["nats"] == [
            int(url.rsplit(":", 1)[1]) for url in urls
        ]

        async def stream_replicas() -> int:
            assert info.nats_admin_url is not None
            nc = await nats.connect(info.nats_admin_url.split(","))
            try:
                return (await nc.jetstream().stream_info("CONTENT")).config.num_replicas or 0
            finally:
                await nc.close()

        assert asyncio.run(stream_replicas()) == 3
        status = subprocess.run(
            [sys.executable, "-m", "pressroom_devstack.cli", "status"],
            env={**stack_env, "COLUMNS": "200"}, capture_output=True, text=True,
        )  # fmt: skip
        assert status.returncode == 0, status.stdout
        assert all(f"NATS node-{i}" in status.stdout for i in range(3)) and "down" not in status.stdout
    assert_gone(stack_home)


def test_external_pieces_are_not_started(
    nats_url: str, database_url: str, s3: S3Info, scripted_llm: ScriptedLLM, stack_home: Path
) -> None:
    env = {
        "PRESSROOM_HOME": str(stack_home),
        "NATS_URL": nats_url,
        "DATABASE_URL": database_url,
        **s3.env(),
        "OPENAI_BASE_URL": scripted_llm.base_url,
    }
    with Stack(StackConfig.from_env(env)) as stack:
        info = stack.start(services=False)
        assert info.started == []
        assert (info.nats_url, info.database_url, info.s3["endpoint"]) == (
            nats_url,
            database_url,
            s3.endpoint,
        )
        assert stack.nats is stack.postgres is stack.objectstore is stack.model is None


def test_no_model_settings_start_the_local_model(
    monkeypatch: pytest.MonkeyPatch, nats_url: str, database_url: str, s3: S3Info, stack_home: Path
) -> None:
    class FakeModel:
        parallel = 3

        def __init__(self, *args: object, **kwargs: object) -> None: ...
        def start(self) -> str:
            return "http://127.0.0.1:1/v1"

        def stop(self) -> None: ...

    monkeypatch.setattr("pressroom_devstack.stack.LocalModel", FakeModel)
    env = {"PRESSROOM_HOME": str(stack_home), "NATS_URL": nats_url, "DATABASE_URL": database_url, **s3.env()}
    with Stack(StackConfig.from_env(env)) as stack:
        info = stack.start(services=False)
        assert info.started == ["model"]
        assert stack.env["OPENAI_BASE_URL"] == "http://127.0.0.1:1/v1"
        assert stack.env["OPENAI_API_KEY"] == "local"
        assert stack.env["PRESSROOM_LLM_PROFILE"] == "completion"
        assert stack.env["PRESSROOM_LLM_MODEL"] == "gemma-3-270m"
        assert stack.env["PRESSROOM_WRITER_CONCURRENCY"] == "3"  # as many posts at once as model slots


def test_failure_half_way_stops_what_was_started(
    stack_env: dict[str, str], stack_home: Path, fake_services: FakeServices
) -> None:
    stack = Stack(StackConfig.from_env({**stack_env, "FAKE_CRASH": "illustrator-0"}))
    with pytest.raises(StartupError, match="illustrator-0"):
        stack.start()
    assert_gone(stack_home)
    assert fake_services.live_pids() == []


# -- the command ------------------------------------------------------------------------------------


def _run_cli(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pressroom_devstack.cli", *args],
        env={**env, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _read_until(proc: subprocess.Popen[str], marker: str, timeout: float = 60) -> str:
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        line = proc.stdout.readline()
        if not line or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{marker!r} not printed; output so far:\n{seen}")
        seen += line
    return seen


def _up_until_signalled(
    env: dict[str, str], fake_services: FakeServices, stop_signal: signal.Signals, *args: str
) -> tuple[str, str]:
    proc = _run_cli(env, "up", *args)
    try:
        output = _read_until(proc, "Running.")
        gateway = f"http://127.0.0.1:{env['PRESSROOM_GATEWAY_PORT']}"
        assert gateway in output and httpx.get(f"{gateway}/healthz").status_code == 200
        status = subprocess.run(
            [sys.executable, "-m", "pressroom_devstack.cli", "status"],
            env={**env, "COLUMNS": "200"}, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert "up" in status.stdout and gateway in status.stdout
        live = len(fake_services.live_pids())
        proc.send_signal(stop_signal)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest
    assert "stopped." in rest
    assert fake_services.live_pids() == []
    return output, f"{live}"


def test_pressroom_up_stops_everything_on_sigterm(
    stack_env: dict[str, str], stack_home: Path, fake_services: FakeServices
) -> None:
    output, live = _up_until_signalled(
        stack_env, fake_services, signal.SIGTERM, "--replicas", "writer=2", "-r", "social=2"
    )
    assert live == "8"
    assert "nats://127.0.0.1:" in output and "pressroom-images" in output
    assert str(stack_home / "logs") in output and output.count("embedded") == 4
    assert_gone(stack_home)


def test_pressroom_up_with_external_servers_stops_its_services_on_sigint(
    stack_env: dict[str, str], fake_services: FakeServices, nats_url: str, database_url: str, s3: S3Info
) -> None:
    env = {**stack_env, "NATS_URL": nats_url, "DATABASE_URL": database_url, **s3.env()}
    output, live = _up_until_signalled(env, fake_services, signal.SIGINT)
    assert live == "6"
    assert nats_url in output and s3.endpoint in output
    assert output.count("embedded") == 1  # only the services


def test_pressroom_up_failing_half_way_exits_1_and_leaves_nothing(
    stack_env: dict[str, str], fake_services: FakeServices, nats_url: str, s3: S3Info
) -> None:
    # Embedded PostgreSQL, external NATS and S3 (test_failure_half_way_stops_what_was_started covers the rest).
    env = {**stack_env, "NATS_URL": nats_url, **s3.env(), "FAKE_CRASH": "research-0"}
    proc = _run_cli(env, "up")
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "research-0" in output and "research-0.log" in output
    assert_gone(stack_env["PRESSROOM_HOME"])
    assert fake_services.live_pids() == []


def test_replicas_option_is_validated() -> None:
    proc = _run_cli(dict(os.environ), "up", "--replicas", "typo=2")
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "typo=2" in output
