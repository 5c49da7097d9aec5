"""The gateway over real sockets: a real nats-server (shared devstack fixtures), the gateway served by
uvicorn in the test's event loop on a free port, and the `websockets` client library.

No stage service runs here: each test plays the pipeline itself, publishing stored events through the
runtime's Publisher and live deltas on core NATS.

Auth: each nats-server gets one test client (an API key in its key bucket). Gateways carry its token and
`ws_connect` sends it as `Authorization: Bearer …` unless told otherwise (`token=None` connects
anonymously, `token="…"` with another); the pipeline's jobs belong to that client.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import uvicorn
from faststream.nats import NatsBroker
from nats.aio.client import Client
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from pressroom_contracts import subjects
from pressroom_contracts.events import Envelope, Producer
from pressroom_contracts.ids import new_job_id
from pressroom_contracts.jobs import JobRequest
from pressroom_devstack.nats import NatsServer
from pressroom_devstack.ports import free_port
from pressroom_gateway.app import create_app, server_config
from pressroom_gateway.settings import GatewaySettings
from pressroom_runtime.apikeys import ClientRecord, create_key
from pressroom_runtime.broker import Publisher, make_broker, nats_servers
from pressroom_runtime.provisioning import provision
from pressroom_testkit import JobEvents, NatsMonitor

RECV_TIMEOUT = 5.0


# ---- auth ---------------------------------------------------------------------------------------------


class TestKey:
    """An API key and the client it authenticates."""

    __test__ = False

    def __init__(self, token: str, record: ClientRecord) -> None:
        self.token = token
        self.record = record

    @property
    def client_id(self) -> str:
        return self.record.client_id


async def new_key(nats_url: str, name: str = "gateway tests") -> TestKey:
    nc = await nats.connect(nats_servers(nats_url))
    try:
        return TestKey(*await create_key(nc, name))
    finally:
        await nc.close()


# ---- the gateway --------------------------------------------------------------------------------------


class Gateway:
    """A gateway served by uvicorn in this event loop, and the test client's key."""

    def __init__(self, settings: GatewaySettings, key: TestKey, monitor: NatsMonitor | None = None) -> None:
        self.settings = settings
        self.key = key
        self.monitor = monitor
        self.token = key.token
        self.client_id = key.client_id
        self.app = create_app(settings)
        self.server = uvicorn.Server(server_config(self.app, settings))
        self._task: asyncio.Task[None] | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://{self.settings.host}:{self.settings.port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}"

    @property
    def nc(self) -> Client:
        return self.app.state.services.bus.nc

    def feed_subscriptions(self) -> int:
        """The gateway's NATS subscriptions for job feeds: ordered-consumer deliveries of stored events
        and live deltas (nats-py's request inbox and the key bucket's watch are not)."""
        return sum(1 for feed in self.app.state.services.hub.feeds.values() for _ in feed.subscriptions())

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve())
        deadline = time.monotonic() + 20
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raises why it failed
            assert time.monotonic() < deadline, "gateway did not start"
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task

    async def healthz(self) -> httpx.Response:
        return await self.get("/healthz")

    async def get(self, path: str, **options: Any) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.http_url, timeout=5) as client:
            return await client.get(path, **options)


# The whole suite connects from 127.0.0.1 as one client: the production limits would throttle it.
# Tests of the limits set their own.
GENEROUS_LIMITS = {"job_rate": "10000/minute", "connect_rate": "10000/minute", "max_connections": 1000}


@asynccontextmanager
async def running_gateway(
    nats_url: str, key: TestKey, *, monitor: NatsMonitor | None = None, **overrides: Any
) -> AsyncIterator[Gateway]:
    settings = GatewaySettings(
        nats_url=nats_url,
        host="127.0.0.1",
        port=free_port(),
        replica="gateway-test",
        **{**GENEROUS_LIMITS, **overrides},
    )
    gateway = Gateway(settings, key, monitor)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


@pytest.fixture(scope="session")
async def provisioned(nats_url: str) -> str:
    await provision(nats_url)
    return nats_url


@pytest.fixture(scope="session")
async def test_key(provisioned: str) -> TestKey:
    """The session's test client: owns the pipeline's jobs, used by ws_connect by default."""
    return await new_key(provisioned)


@pytest.fixture(scope="session")
async def other_key(provisioned: str) -> TestKey:
    """Another client, for isolation tests."""
    return await new_key(provisioned, "someone else")


@pytest.fixture(scope="session")
async def gateway(provisioned: str, test_key: TestKey, nats_monitor: NatsMonitor) -> AsyncIterator[Gateway]:
    async with running_gateway(provisioned, test_key, monitor=nats_monitor) as gw:
        yield gw


@pytest.fixture
def gateway_factory(provisioned: str, test_key: TestKey, nats_monitor: NatsMonitor) -> Callable[..., Any]:
    """A second gateway with other settings: `async with gateway_factory(send_queue=4) as gw`."""
    return lambda **overrides: running_gateway(provisioned, test_key, monitor=nats_monitor, **overrides)


class IsolatedStack:
    """A nats-server and gateway of one test's own, for tests that stop NATS or purge the stream."""

    def __init__(self, root: Path) -> None:
        self.nats = NatsServer(root / "nats", root / "nats.log")

    @asynccontextmanager
    async def run(self, **overrides: Any) -> AsyncIterator[tuple[Gateway, Pipeline]]:
        """Its nats-server, provisioned, a gateway (with these settings) and a pipeline on it."""
        url = self.nats.start()
        try:
            await provision(url)
            key = await new_key(url)
            monitor = NatsMonitor(self.nats.monitor_url)
            async with (
                running_gateway(url, key, monitor=monitor, **overrides) as gw,
                pipeline_on(url, key.client_id) as pipe,
            ):
                yield gw, pipe
        finally:
            self.nats.stop()


@pytest.fixture
def isolated_stack(tmp_path: Path) -> IsolatedStack:
    return IsolatedStack(tmp_path)


# ---- the pipeline, played by the test ----------------------------------------------------------------


class Pipeline:
    """Publishes what the stage services would: stored events (Publisher: ack + dedup) and live deltas.
    Jobs it starts belong to `owner` (the test client) unless told otherwise."""

    producer = Producer(service="test-pipeline", replica="test-0")

    def __init__(self, broker: NatsBroker, owner: str | None) -> None:
        self.broker = broker
        self.publisher = Publisher(broker)
        self.owner = owner

    @property
    def nc(self) -> Client:
        return self.broker.connection

    async def publish(self, event: Envelope) -> int:
        return await self.publisher.publish(event)

    async def delta(self, job_id: str, stage: str, offset: int, text: str) -> None:
        await self.publisher.delta(job_id, stage, offset, text)
        await self.sync()

    async def sync(self) -> None:
        """Returns once the server has processed everything this connection sent before (SUB, PUB).

        Not nc.flush(): nats-py 2.16 writes its PING straight to the socket, ahead of commands still
        queued for its flusher task, so the PONG can come back before an earlier SUB reached the server.
        A request travels through the same queue as the commands before it.
        """
        await self.nc.jetstream().account_info()

    def job(self, job_id: str, request: JobRequest | None = None) -> JobEvents:
        """The event builder of a job (e.g. one the gateway started)."""
        return JobEvents(job_id, request or JobRequest(topic="Event-driven systems"), self.producer)

    async def new_job(
        self, request: JobRequest | None = None, owner: str | Any | None = ...
    ) -> tuple[JobEvents, int]:
        """A job started as the gateway would start it for `owner` (default: the test client); returns it
        with the job.requested sequence."""
        job = self.job(new_job_id(), request)
        return job, await self.publish(job.requested(owner=self.owner if owner is ... else owner))


@asynccontextmanager
async def persistence_answering(nc: Client, owners: dict[str, str]) -> AsyncIterator[None]:
    """Plays persistence's `query.job` for the jobs in `owners` (job id -> owner): the part of its answer
    the gateway's owner check reads; not_found for any other job."""

    async def answer(msg: Any) -> None:
        job_id = json.loads(msg.data)["job_id"]
        if job_id in owners:
            body = {"job": {"id": job_id, "owner": owners[job_id]}}
        else:
            body = {"error": {"code": "not_found", "message": f"no job {job_id}"}}
        await msg.respond(json.dumps(body).encode())

    sub = await nc.subscribe(subjects.QUERY_JOB, cb=answer)
    await nc.flush()
    try:
        yield
    finally:
        await sub.unsubscribe()


@asynccontextmanager
async def pipeline_on(nats_url: str, owner: str | None) -> AsyncIterator[Pipeline]:
    broker = make_broker(nats_url, name="test-pipeline")
    await broker.connect()
    try:
        yield Pipeline(broker, owner)
    finally:
        await broker.stop()


@pytest.fixture(scope="session")
async def pipeline(provisioned: str, test_key: TestKey) -> AsyncIterator[Pipeline]:
    async with pipeline_on(provisioned, test_key.client_id) as pipe:
        yield pipe


# ---- the client ---------------------------------------------------------------------------------------


class WsClient:
    """A `websockets` client speaking JSON frames, with timeouts so a missing frame fails fast."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(frame if isinstance(frame, str | bytes) else json.dumps(frame))

    async def recv(self, timeout: float = RECV_TIMEOUT) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            return json.loads(await self.ws.recv())

    async def expect(self, kind: str, timeout: float = RECV_TIMEOUT) -> dict[str, Any]:
        frame = await self.recv(timeout)
        assert frame["type"] == kind, frame
        return frame

    async def events(self, count: int) -> list[dict[str, Any]]:
        return [await self.expect("event") for _ in range(count)]

    async def barrier(self, ref: str = "barrier") -> None:
        """Everything sent before is handled: the next frame must be our pong (nothing else arrived)."""
        await self.send({"type": "ping", "ref": ref})
        frame = await self.recv()
        assert frame == {"type": "pong", "ref": ref}, f"unexpected frame before pong: {frame}"

    async def quiet(self, seconds: float = 0.3) -> None:
        """Nothing more arrives: wait, then the barrier's pong must be next."""
        await asyncio.sleep(seconds)
        await self.barrier("quiet")

    async def closed(self, timeout: float = RECV_TIMEOUT) -> ConnectionClosed:
        """Reads until the server closes; returns how it closed."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.ws.recv()
        except ConnectionClosed as exc:
            return exc
        raise AssertionError("unreachable")


DEFAULT_TOKEN: Any = object()


@pytest.fixture
def ws_connect() -> Callable[..., Any]:
    """`async with ws_connect(gateway, "/v1/ws") as client`: authenticated as the gateway's test client
    with an Authorization header; `token=None` sends no token, `token="…"` another one."""

    @asynccontextmanager
    async def _connect(
        gw: Gateway, path: str = "/v1/ws", *, token: str | None = DEFAULT_TOKEN, **options: Any
    ) -> AsyncIterator[WsClient]:
        token = gw.token if token is DEFAULT_TOKEN else token
        if token is not None:
            options.setdefault("additional_headers", {"Authorization": f"Bearer {token}"})
        async with connect(gw.ws_url + path, open_timeout=5, close_timeout=2, **options) as ws:
            yield WsClient(ws)

    return _connect


def stored_subject(job_id: str, event_type: str) -> str:
    return subjects.content(job_id, event_type)
