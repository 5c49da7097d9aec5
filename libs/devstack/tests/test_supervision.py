"""The embedded servers are restarted in place when they die (kill -9), after the services' backoff, and
one that keeps dying is given up on. Real servers, killed for real."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import nats
import pytest

from pressroom_devstack.config import StackConfig
from pressroom_devstack.model import MODEL_FILE, MODEL_ID
from pressroom_devstack.nats import NatsServer
from pressroom_devstack.objectstore import S3Info
from pressroom_devstack.postgres import Postgres
from pressroom_devstack.stack import Stack
from pressroom_devstack.supervision import GIVE_UP_AFTER, Server, ServerSupervisor
from pressroom_testkit.plugin import PG_TEST_ROOT
from pressroom_testkit.processes import assert_gone


def _kill(server: Server) -> None:
    """What the tester did: kill -9 of the server's pid, behind the supervisor's back."""
    assert server.pid is not None
    os.kill(server.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server.running():
        assert time.monotonic() < deadline, "still running after SIGKILL"
        time.sleep(0.01)


async def _stream_messages(url: str, publish: bool) -> int:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        if publish:
            await js.add_stream(name="KEPT", subjects=["kept.>"])
            await js.publish("kept.one", b"survives")
        return int((await js.stream_info("KEPT")).state.messages)
    finally:
        await nc.close()


def _heal_until_restarted(supervisor: ServerSupervisor, timeout: float = 60) -> list[str]:
    notes: list[str] = []
    loop = asyncio.new_event_loop()
    try:
        deadline = loop.time() + timeout
        while not any(" restarted (pid " in note for note in notes):
            assert loop.time() < deadline, f"not restarted; notes: {notes}"
            notes += supervisor.heal()
            loop.run_until_complete(asyncio.sleep(0.1))
    finally:
        loop.close()
    return notes


def test_a_killed_nats_server_comes_back_on_its_port_with_its_stream(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats", tmp_path / "nats.log")
    supervisor = ServerSupervisor()
    url = server.start()
    supervisor.watch("nats", server)
    try:
        assert supervisor.heal() == []  # running: nothing to do
        assert asyncio.run(_stream_messages(url, publish=True)) == 1
        old_pid = server.pid
        _kill(server)

        notes = _heal_until_restarted(supervisor)
        assert (
            notes[0]
            == f"nats died; restarting it in 0.5s with the same data, port and credentials (see {server.log_path})"
        )
        assert notes[-1] == f"nats restarted (pid {server.pid}, restart 1)"
        assert server.pid != old_pid and server.url == url and server.healthy()
        assert asyncio.run(_stream_messages(url, publish=False)) == 1  # JetStream kept it on disk
        assert supervisor.describe() == {"nats": {"restarts": 1, "given_up": False}}
        assert supervisor.heal() == []
    finally:
        supervisor.stopped = True
        server.stop()
    assert supervisor.heal() == []  # a stopped stack restarts nothing
    assert_gone(str(tmp_path / "nats"))


def test_a_server_that_keeps_dying_is_given_up_on(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats", tmp_path / "nats.log")
    supervisor = ServerSupervisor()
    server.start()
    supervisor.watch("nats", server)
    watched = supervisor.watched[0]
    try:
        delays = []
        for _ in range(GIVE_UP_AFTER):
            _kill(server)
            now = watched.backoff.started_at + 1  # each death a second after its start: not stable
            (died,) = supervisor.heal(now=now)
            delays.append(died.split("restarting it in ", 1)[1].split("s ", 1)[0])
            (restarted,) = supervisor.heal(now=watched.backoff.restart_at)
            assert "restarted" in restarted and server.healthy()
        assert delays == ["0.5", "1.0", "2.0", "4.0", "8.0"]  # the services' backoff

        _kill(server)
        (gave_up,) = supervisor.heal(now=watched.backoff.started_at + 1)
        assert gave_up.startswith(f"nats died again right after restart {GIVE_UP_AFTER}; giving up on it")
        assert supervisor.heal(now=watched.backoff.started_at + 3600) == []  # never again
        assert not server.running()
        assert supervisor.describe()["nats"] == {"restarts": GIVE_UP_AFTER, "given_up": True}
    finally:
        server.stop()
    assert_gone(str(tmp_path / "nats"))


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    PG_TEST_ROOT.mkdir(mode=0o755, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=PG_TEST_ROOT))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


async def _count(url: str, create: bool) -> int:
    conn = await asyncpg.connect(url)
    try:
        if create:
            await conn.execute("CREATE TABLE kept AS SELECT 42 AS answer")
        return int(await conn.fetchval("SELECT count(*) FROM kept"))
    finally:
        await conn.close()


def test_a_killed_postgres_comes_back_on_its_data(pg_dir: Path, tmp_path: Path) -> None:
    # The postmaster's stale lock files (and, where nobody reaps it, its zombie) must not stop it.
    pg = Postgres(pg_dir / "pg", tmp_path / "postgres.log")
    supervisor = ServerSupervisor()
    url = pg.start()
    supervisor.watch("postgres", pg)
    try:
        assert asyncio.run(_count(url, create=True)) == 1
        old_pid = pg.pid
        _kill(pg)

        notes = _heal_until_restarted(supervisor)
        assert notes[0].startswith("postgres died; restarting it in 0.5s"), notes
        assert notes[1] == f"postgres restarted (pid {pg.pid}, restart 1)", notes  # at the first try
        assert pg.pid != old_pid and pg.url == url
        assert asyncio.run(_count(url, create=False)) == 1
    finally:
        pg.stop()
    assert_gone(str(pg_dir))


@pytest.mark.model
def test_a_killed_model_server_comes_back_on_its_port_through_the_stack(
    nats_url: str, database_url: str, s3: S3Info, stack_home: Path
) -> None:
    # No OPENAI_* settings: the stack starts the real local model; the other servers are the session's.
    cached = (
        Path(os.environ.get("PRESSROOM_MODEL_CACHE", Path.home() / ".cache/pressroom/models")) / MODEL_FILE
    )
    if cached.exists():  # spares assembling the GGUF again
        (stack_home / "models").mkdir(parents=True)
        (stack_home / "models" / MODEL_FILE).symlink_to(cached)
    env = {"PRESSROOM_HOME": str(stack_home), "NATS_URL": nats_url, "DATABASE_URL": database_url, **s3.env()}
    with Stack(StackConfig.from_env(env)) as stack:
        info = stack.start(services=False)
        assert stack.model is not None and info.model_health_url and info.llm_base_url
        old_pid = stack.model.pid
        _kill(stack.model)

        notes: list[str] = []
        deadline = time.monotonic() + 120
        while not any(note.startswith("model restarted") for note in notes):
            assert time.monotonic() < deadline, f"not restarted; notes: {notes}"
            notes += stack.heal()
            time.sleep(0.2)
        assert notes[0].startswith("model died; restarting it in 0.5s"), notes
        assert stack.model.pid != old_pid and stack.model.base_url == info.llm_base_url  # same port
        assert httpx.get(info.model_health_url).is_success
        models = httpx.get(f"{info.llm_base_url}/models").json()
        assert [m["id"] for m in models["data"]] == [MODEL_ID]
        state = json.loads((stack_home / "stack.json").read_text())
        assert state["servers"]["model"] == {"restarts": 1, "given_up": False}
    assert_gone(stack_home)
