"""The pytest plugin of Pressroom's tests: real servers on free loopback ports in temporary folders,
stopped at teardown even when tests fail.

Installed with pressroom-testkit, pytest loads it by itself (entry point `pytest11`); no conftest names it.

Session-scoped (started once, on first use): nats_server/nats_url/nats_monitor, postgres_server/
database_url, s3_store/s3, scripted_llm_server, local_model/local_model_url.
Function-scoped: browser (headless Chromium, skipped when missing), scripted_llm (reset before each test), fresh_database_url, service_env, service_runner,
eventually (the polling helper of .waiting).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pressroom_devstack.config import sample_knowledge_dir
from pressroom_devstack.env import LLMEndpoint, without_contract
from pressroom_devstack.env import service_env as build_service_env
from pressroom_devstack.model import LocalModel
from pressroom_devstack.nats import NatsServer
from pressroom_devstack.natsauth import NatsUsers
from pressroom_devstack.objectstore import S3Credentials, S3Info, SeaweedS3
from pressroom_devstack.postgres import Postgres, reap_orphans
from pressroom_devstack.provisioning import reset_nats

from .browser import chromium
from .monitor import NatsMonitor
from .runner import ServiceRunner
from .scripted_llm import ScriptedLLM
from .waiting import eventually as _eventually


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "model: runs the real local model (Gemma 3 270M through llama.cpp)")
    # A SIGTERMed run (CI cancel, timeout wrapper) would skip every teardown and orphan the servers;
    # as KeyboardInterrupt, pytest unwinds the fixtures first.
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        with contextlib.suppress(ValueError):  # not the main thread: leave it
            signal.signal(signal.SIGTERM, signal.default_int_handler)


@pytest.fixture(scope="session")
def devstack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root of this session's server data and logs (logs/ holds one file per process)."""
    return tmp_path_factory.mktemp("devstack")


# As root, pgserver runs postgres as a 'pgserver' user that must traverse every parent of its data
# folder, but each new pytest session resets /tmp/pytest-of-<user> to 0700. So test clusters live in a
# folder of their own; orphans of killed runs are reaped there.
PG_TEST_ROOT = Path(tempfile.gettempdir()) / "pressroom-test-pg"


@pytest.fixture(scope="session")
def nats_server(devstack_dir: Path) -> Iterator[NatsServer]:
    """nats-server with JetStream and the users of pressroom_contracts.access (kill()/start() it for fault
    tests: same port, same store, same users)."""
    server = NatsServer(devstack_dir / "nats", devstack_dir / "logs" / "nats.log", users=NatsUsers.generate())
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nats_url(nats_server: NatsServer) -> str:
    """The admin's URL (credentials included): tests connect as admin; services get their own users."""
    return nats_server.admin_url


@pytest.fixture(scope="session")
def nats_monitor(nats_server: NatsServer) -> NatsMonitor:
    """The session's nats-server as its monitoring endpoints report it (subscriptions, consumers)."""
    return NatsMonitor(nats_server.monitor_url)


@pytest.fixture(scope="session")
def postgres_server(devstack_dir: Path) -> Iterator[Postgres]:
    PG_TEST_ROOT.mkdir(mode=0o755, exist_ok=True)
    reap_orphans(PG_TEST_ROOT)
    cluster = Path(tempfile.mkdtemp(prefix="pg-", dir=PG_TEST_ROOT))
    server = Postgres(
        cluster / "pgdata", devstack_dir / "logs" / "postgres.log", database="pressroom_test", durable=False
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(cluster, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(postgres_server: Postgres) -> str:
    """A database created for this session (`pressroom_test`), as a unix-socket URI asyncpg accepts."""
    return postgres_server.url


@pytest.fixture
def fresh_database_url(postgres_server: Postgres) -> Iterator[str]:
    """An empty database for one test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def s3_store(devstack_dir: Path) -> Iterator[SeaweedS3]:
    store = SeaweedS3(
        devstack_dir / "s3", devstack_dir / "logs" / "s3.log", credentials=S3Credentials.generate()
    )
    try:
        store.start()
        yield store
    finally:
        store.stop()


@pytest.fixture(scope="session")
def s3(s3_store: SeaweedS3) -> S3Info:
    """endpoint (host:port), access_key, secret_key, bucket (created), secure=False; .client() gives a Minio."""
    return s3_store.info


@pytest.fixture(scope="session")
def scripted_llm_server() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


@pytest.fixture
def scripted_llm(scripted_llm_server: ScriptedLLM) -> ScriptedLLM:
    """The scripted OpenAI-compatible server, reset to its default answer with no rules or requests."""
    scripted_llm_server.reset()
    scripted_llm_server.reply("This is a scripted answer from the test model.")
    return scripted_llm_server


@pytest.fixture(scope="session")
def local_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalModel]:
    """The real Gemma 3 270M behind llama.cpp. The assembled GGUF is cached across sessions."""
    cache = Path(os.environ.get("PRESSROOM_MODEL_CACHE", Path.home() / ".cache" / "pressroom" / "models"))
    logs = tmp_path_factory.mktemp("model-logs")
    model = LocalModel(cache, logs / "model.log")
    try:
        model.start()
        yield model
    finally:
        model.stop()


@pytest.fixture(scope="session")
def local_model_url(local_model: LocalModel) -> str:
    """OPENAI_BASE_URL of the local model (…/v1); model id "gemma-3-270m", use the completions API."""
    return local_model.base_url


@pytest.fixture
def service_env(
    nats_server: NatsServer, database_url: str, s3: S3Info, scripted_llm: ScriptedLLM
) -> dict[str, str]:
    """The env services get in tests: these fixtures' servers, the scripted LLM (chat profile), the sample
    knowledge folder; nothing inherited from the developer's own Pressroom/OpenAI/S3 settings. NATS_URL
    has no credentials: service_runner gives each service its own NATS user."""
    return build_service_env(
        without_contract(os.environ),
        nats_url=nats_server.url,
        database_url=database_url,
        s3=s3,
        llm=LLMEndpoint(
            base_url=scripted_llm.base_url, api_key="test", model=scripted_llm.model, profile="chat"
        ),
        knowledge_dir=sample_knowledge_dir(),
        gateway_host="127.0.0.1",
    )


@pytest.fixture
def service_runner(
    service_env: dict[str, str], nats_server: NatsServer, tmp_path: Path
) -> Iterator[ServiceRunner]:
    """`service_runner.start("writer", replicas={"writer": 2}, env={...})`; logs in tmp_path/logs.

    The stream starts empty: services must not pick up messages other tests left on the session's NATS.
    """
    reset_nats(nats_server.admin_url)
    runner = ServiceRunner(
        service_env, tmp_path / "logs", admin_url=nats_server.admin_url, nats_users=nats_server.users
    )
    try:
        yield runner
    finally:
        runner.stop()


@pytest.fixture
def eventually() -> Callable[..., Awaitable[Any]]:
    """`await eventually(check, timeout=…, interval=…)`: polls `check` until it returns something truthy."""
    return _eventually


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Headless Chromium (a playwright Browser); the test is skipped, with the reason, without one."""
    async with chromium() as instance:
        yield instance
