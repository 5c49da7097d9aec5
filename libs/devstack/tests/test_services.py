"""The supervisor and the service_runner fixture, against stand-in services (tiny HTTP servers installed
as pressroom_<name> packages on PYTHONPATH, see conftest.py) so they do not depend on the real ones."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from pressroom_devstack.errors import StartupError
from pressroom_devstack.nats import NatsServer
from pressroom_devstack.objectstore import S3Info
from pressroom_devstack.ports import free_port
from pressroom_devstack.services import SERVICES, ServiceSupervisor
from pressroom_testkit import ScriptedLLM
from pressroom_testkit.runner import ServiceRunner

if TYPE_CHECKING:
    from conftest import FakeServices  # only for the annotations: conftest is not importable at run time


def test_replicas_health_kill_restart_stop(fake_services: FakeServices, tmp_path: Path) -> None:
    gateway_port = free_port()
    supervisor = ServiceSupervisor(fake_services.env, tmp_path / "logs", gateway_port=gateway_port, grace=3)
    try:
        supervisor.start(replicas={"writer": 2})
        assert sorted(r.name for r in supervisor.replicas.values()) == sorted(
            [f"{s}-0" for s in SERVICES] + ["writer-1"]
        )
        writer0, writer1 = fake_services.seen_env("writer-0"), fake_services.seen_env("writer-1")
        assert writer0["PRESSROOM_REPLICA"] == "writer-0" and writer1["PRESSROOM_REPLICA"] == "writer-1"
        assert writer0["PRESSROOM_HEALTH_PORT"] != writer1["PRESSROOM_HEALTH_PORT"]
        assert writer0["NATS_URL"] == "nats://127.0.0.1:1"
        assert writer0["PRESSROOM_DRAIN_SECONDS"] == "1.5"  # handed back within the stop's 3 s grace
        gateway = fake_services.seen_env("gateway-0")
        assert gateway["PRESSROOM_GATEWAY_PORT"] == str(gateway_port)
        assert gateway["PRESSROOM_GATEWAY_HOST"] == "127.0.0.1"
        assert httpx.get(f"{supervisor.gateway_url}/healthz").status_code == 200

        victim = supervisor.get("writer", 1)
        old_pid, port = victim.process.pid, victim.health_port
        supervisor.kill("writer", 1)
        assert not victim.process.alive() and not victim.healthy()
        again = supervisor.restart("writer", 1)
        assert again.process.pid != old_pid and again.health_port == port and again.healthy()
        assert len(fake_services.live_pids()) == len(SERVICES) + 1
    finally:
        supervisor.stop()
    assert fake_services.live_pids() == []
    assert (tmp_path / "logs" / "writer-1.log").read_text().count("fake writer-1 ready") == 2


def test_heal_restarts_an_exited_replica_with_backoff(fake_services: FakeServices, tmp_path: Path) -> None:
    supervisor = ServiceSupervisor(fake_services.env, tmp_path / "logs", gateway_port=free_port(), grace=3)
    try:
        supervisor.start(["writer", "social"])
        assert supervisor.heal() == []  # everything runs: nothing to do
        victim = supervisor.get("writer")
        old_pid, port = victim.process.pid, victim.health_port
        victim.process.kill()  # kill -9, as a crash would

        t0 = victim.started_at + 1  # died one second after it started: not stable
        (note,) = supervisor.heal(now=t0)
        assert note.startswith("writer-0 exited (-9); restarting in 0.5s")
        assert supervisor.heal(now=t0 + 0.4) == []  # still backing off
        (note,) = supervisor.heal(now=t0 + 0.5)
        again = supervisor.get("writer")
        assert note == f"writer-0 restarted (pid {again.process.pid}, restart 1)"
        assert again.process.pid != old_pid and again.health_port == port and again.restarts == 1
        supervisor.wait_healthy([again])

        # Dying again at once doubles the wait; after a long healthy run it starts over.
        again.process.kill()
        assert "restarting in 1.0s" in supervisor.heal(now=again.started_at + 1)[0]
        third = supervisor.heal(now=again.started_at + 2.5)
        assert third and supervisor.get("writer").restarts == 2
        latest = supervisor.get("writer")
        latest.process.kill()
        assert "restarting in 0.5s" in supervisor.heal(now=latest.started_at + 60)[0]
    finally:
        supervisor.stop()
    assert supervisor.heal() == []  # a stopped supervisor restarts nothing
    assert fake_services.live_pids() == []


def test_crash_at_start_points_at_the_log(fake_services: FakeServices, tmp_path: Path) -> None:
    env = {**fake_services.env, "FAKE_CRASH": "social-0"}
    supervisor = ServiceSupervisor(env, tmp_path / "logs", gateway_port=free_port())
    try:
        with pytest.raises(StartupError, match=r"(?s)social-0.*exited.*social-0\.log.*crashing on purpose"):
            supervisor.start()
    finally:
        supervisor.stop()
    assert fake_services.live_pids() == []


def test_slow_health_times_out(fake_services: FakeServices, tmp_path: Path) -> None:
    env = {**fake_services.env, "FAKE_START_DELAY": "30"}
    supervisor = ServiceSupervisor(env, tmp_path / "logs", gateway_port=free_port(), startup_timeout=1)
    try:
        with pytest.raises(StartupError, match="not healthy after 1s"):
            supervisor.start(["research"])
    finally:
        supervisor.stop()
    assert fake_services.live_pids() == []


def test_sigterm_ignored_means_sigkill_after_grace(fake_services: FakeServices, tmp_path: Path) -> None:
    env = {**fake_services.env, "FAKE_IGNORE_TERM": "writer-0"}
    supervisor = ServiceSupervisor(env, tmp_path / "logs", gateway_port=free_port(), grace=1)
    supervisor.start(["writer", "social"])
    stubborn = supervisor.get("writer").process
    supervisor.stop()
    assert not stubborn.alive() and stubborn.returncode == -9
    assert fake_services.live_pids() == []


def test_unknown_service_is_refused(fake_services: FakeServices, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown service"):
        ServiceSupervisor(fake_services.env, tmp_path).start(replicas={"nope": 2})


def test_service_runner_fixture_wires_the_servers(
    service_runner: ServiceRunner,
    fake_services: FakeServices,
    nats_server: NatsServer,
    database_url: str,
    s3: S3Info,
    scripted_llm: ScriptedLLM,
) -> None:
    service_runner.env.update(
        PYTHONPATH=fake_services.env["PYTHONPATH"], FAKE_ENV_DIR=fake_services.env["FAKE_ENV_DIR"]
    )
    service_runner.start("writer", "gateway", replicas={"writer": 2})
    env = fake_services.seen_env("writer-1")
    # No credentials in the URL: each service has its own NATS user.
    assert env["NATS_URL"] == nats_server.url
    assert env["NATS_USER"] == "writer" and nats_server.users is not None
    assert env["NATS_PASSWORD"] == nats_server.users.password("writer")
    assert fake_services.seen_env("gateway-0")["NATS_USER"] == "gateway"
    assert env["DATABASE_URL"] == database_url
    assert env["S3_ENDPOINT"] == s3.endpoint and env["S3_SECRET_KEY"] == s3.secret_key
    assert env["S3_BUCKET"] == s3.bucket and env["S3_SECURE"] == "false"
    assert env["OPENAI_BASE_URL"] == scripted_llm.base_url and env["OPENAI_API_KEY"] == "test"
    assert env["PRESSROOM_LLM_PROFILE"] == "chat" and env["PRESSROOM_LLM_MODEL"] == scripted_llm.model
    assert Path(env["PRESSROOM_KNOWLEDGE_DIR"]).is_dir()
    assert (
        service_runner.gateway_url and httpx.get(f"{service_runner.gateway_url}/healthz").status_code == 200
    )
    service_runner.kill("writer", 0)
    service_runner.restart("writer", 0)
    assert service_runner.replica("writer", 0).healthy()
