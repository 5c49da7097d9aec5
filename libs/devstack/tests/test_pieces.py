"""Each embedded server starts, is healthy, reuses its data, and stops leaving no process behind."""

from __future__ import annotations

import asyncio
import io
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import nats
import psutil
import pytest
from minio.error import S3Error

from pressroom_devstack.errors import StartupError
from pressroom_devstack.nats import NatsServer
from pressroom_devstack.objectstore import S3Credentials, SeaweedS3
from pressroom_devstack.ports import free_port, is_free
from pressroom_devstack.postgres import Postgres, reap_orphans
from pressroom_testkit.plugin import PG_TEST_ROOT
from pressroom_testkit.processes import assert_gone, processes_mentioning


def test_free_ports_are_distinct_and_free() -> None:
    ports = {free_port() for _ in range(20)}
    assert len(ports) == 20
    assert all(is_free(p) for p in ports)
    paired = free_port(paired_offset=10000)
    assert is_free(paired + 10000)


def test_a_port_another_process_was_given_is_not_given_again() -> None:
    # Another process (a test worker, a stack) was given a port and has not bound it yet: the OS would
    # offer it to us all the same (CI: two services of two workers on one port, one failed to bind).
    script = "from pressroom_devstack.ports import free_port; print(free_port(), flush=True); input()"
    other = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None
        theirs = int(other.stdout.readline())
        assert is_free(theirs)  # nothing listens on it yet
        assert free_port(preferred=theirs) != theirs
    finally:
        other.kill()
        other.wait()
    assert free_port(preferred=theirs) == theirs  # its process is gone: anyone's again


def test_nats_starts_with_jetstream_and_stops_clean(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats", tmp_path / "logs" / "nats.log")
    url = server.start()
    assert server.start() == url  # idempotent

    async def publish() -> int:
        nc = await nats.connect(url)
        js = nc.jetstream()
        await js.add_stream(name="T", subjects=["t.>"])
        ack = await js.publish("t.x", b"hello", stream="T")
        await nc.close()
        return ack.seq

    assert asyncio.run(publish()) == 1
    server.stop()
    assert_gone(str(tmp_path / "nats"))
    assert (tmp_path / "logs" / "nats.log").read_text().count("Server is ready") == 1

    server.start()  # the same store: the stream survived

    async def stream_messages() -> int:
        nc = await nats.connect(server.url)
        info = await nc.jetstream().stream_info("T")
        await nc.close()
        return info.state.messages

    assert asyncio.run(stream_messages()) == 1
    server.stop()
    assert_gone(str(tmp_path / "nats"))


def test_unhealthy_start_names_the_log(tmp_path: Path) -> None:
    taken = free_port()
    blocker = NatsServer(tmp_path / "a", tmp_path / "a.log", port=taken)
    blocker.start()
    try:
        clash = NatsServer(tmp_path / "b", tmp_path / "b.log", port=taken, startup_timeout=5)
        with pytest.raises(StartupError, match=r"b\.log"):
            clash.start()
        assert_gone(str(tmp_path / "b"))
    finally:
        blocker.stop()


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    PG_TEST_ROOT.mkdir(mode=0o755, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=PG_TEST_ROOT))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_postgres_serves_a_database_and_stops_clean(pg_dir: Path, tmp_path: Path) -> None:
    pg = Postgres(pg_dir / "pg", tmp_path / "logs" / "postgres.log")
    url = pg.start()
    assert url.startswith("postgresql://") and "/pressroom?" in url

    async def roundtrip(dsn: str) -> str:
        conn = await asyncpg.connect(dsn)
        await conn.execute("CREATE TABLE IF NOT EXISTS t (v text)")
        await conn.execute("INSERT INTO t VALUES ('kept')")
        value = await conn.fetchval("SELECT current_database()")
        await conn.close()
        return str(value)

    assert asyncio.run(roundtrip(url)) == "pressroom"
    pg.stop()
    assert_gone(str(pg_dir))

    url = Postgres(pg_dir / "pg", tmp_path / "logs" / "postgres.log").start()  # restart, same data

    async def count(dsn: str) -> int:
        conn = await asyncpg.connect(dsn)
        n = await conn.fetchval("SELECT count(*) FROM t")
        await conn.close()
        return int(n)

    try:
        assert asyncio.run(count(url)) == 1
    finally:
        Postgres(pg_dir / "pg", tmp_path / "logs" / "postgres.log").stop()
    assert_gone(str(pg_dir))


def test_orphaned_postgres_is_reaped(pg_dir: Path, tmp_path: Path) -> None:
    pg = Postgres(pg_dir / "pg", tmp_path / "pg.log")
    pg.start()
    # Pretend the process that started it was SIGKILLed: forget it without stopping the server.
    pg._forget()
    (pg_dir / "pg" / ".handle_pids.json").write_text("[]")
    assert processes_mentioning(str(pg_dir))
    assert reap_orphans(pg_dir) == [(pg_dir / "pg").resolve()]
    assert_gone(str(pg_dir))


def test_seaweedfs_serves_s3_on_loopback_only_and_stops_clean(tmp_path: Path) -> None:
    creds = S3Credentials.load_or_create(tmp_path / "credentials.json")
    assert stat.S_IMODE((tmp_path / "credentials.json").stat().st_mode) == 0o600
    assert S3Credentials.load_or_create(tmp_path / "credentials.json") == creds

    store = SeaweedS3(tmp_path / "s3", tmp_path / "logs" / "s3.log", bucket="test-bucket", credentials=creds)
    info = store.start()
    try:
        client = info.client()
        assert client.bucket_exists("test-bucket")
        client.put_object("test-bucket", "a.txt", io.BytesIO(b"hi"), 2)
        assert client.get_object("test-bucket", "a.txt").read() == b"hi"
        wrong = type(info)(info.endpoint, info.access_key, "not-the-secret", info.bucket)
        with pytest.raises(S3Error, match=r"(?i)signature|denied|invalid"):
            wrong.client().bucket_exists("test-bucket")
        # Nothing on the well-known default ports of `weed mini`, nothing on a public interface.
        pid = processes_mentioning(str(tmp_path / "s3"))[0].pid
        conns = psutil.Process(pid).net_connections("tcp")
        listening = [c.laddr for c in conns if c.status == psutil.CONN_LISTEN]
        assert listening and all(addr.ip == "127.0.0.1" for addr in listening)
        defaults = {9333, 8080, 8888, 23646, 7333, 8181, 9101, 6060, 19333, 18080, 18888}
        assert not defaults & {addr.port for addr in listening}
        assert any(path.exists() for path in store.tmp_sockets())
    finally:
        store.stop()
    assert_gone(str(tmp_path / "s3"))
    assert not [path for path in store.tmp_sockets() if path.exists()]


def test_nats_kill_and_restart_keeps_port_and_store(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats", tmp_path / "nats.log")
    url = server.start()
    server.kill()
    assert not server.running()
    assert server.start() == url
    server.stop()
    assert_gone(str(tmp_path / "nats"))


def test_fresh_database_url_is_empty_and_private(fresh_database_url: str, database_url: str) -> None:
    async def tables(url: str) -> list[str]:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("CREATE TABLE mine (id int)")
            rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            return [r["tablename"] for r in rows]
        finally:
            await conn.close()

    assert fresh_database_url != database_url
    assert asyncio.run(tables(fresh_database_url)) == ["mine"]
