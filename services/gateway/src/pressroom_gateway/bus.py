"""The gateway's connection to NATS: one FastStream broker, its nats-py client (key-value buckets,
replays, live subscriptions) and the runtime's Publisher, the one way stored events are published
(stream ack, Nats-Msg-Id, retries, metrics)."""

from __future__ import annotations

import asyncio

import nats.errors
from faststream.exceptions import IncorrectState
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from pressroom_contracts import subjects
from pressroom_contracts.events import Producer
from pressroom_contracts.topology import IDEMPOTENCY_BUCKET, JOBS_BUCKET, KEY_BUCKET
from pressroom_runtime.broker import Publisher, make_broker
from pressroom_runtime.logs import get_logger

from .settings import GatewaySettings

log = get_logger(__name__)

SERVICE = "gateway"
READY_TIMEOUT = 2.0

# What a request handler may get when NATS is down or slow: answered as `unavailable`, not `internal`.
BUS_ERRORS: tuple[type[Exception], ...] = (nats.errors.Error, asyncio.TimeoutError, IncorrectState)


class Bus:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.broker = make_broker(
            settings.nats_url,
            name=f"{SERVICE}:{settings.replica}",
            user=settings.nats_user,
            password=settings.nats_password,
        )
        self.publisher = Publisher(self.broker, timeout=settings.publish_timeout, service=SERVICE)
        self.producer = Producer(service=SERVICE, replica=settings.replica)
        self._js: JetStreamContext | None = None

    async def connect(self) -> None:
        # No subscribers are registered on the broker, so connect() is enough; start() would add nothing.
        # The broker reconnects forever, including on the first connect: start-up waits for NATS.
        await self.broker.connect()
        self._js = self.nc.jetstream()
        log.info("connected to nats", url=self.settings.nats_url)

    async def close(self) -> None:
        # Drains the connection: pending publishes are flushed, subscriptions are closed.
        await self.broker.stop()
        self._js = None

    @property
    def nc(self) -> Client:
        return self.broker.connection

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise IncorrectState("the bus is not connected")
        return self._js

    @property
    def connected(self) -> bool:
        try:
            return self.nc.is_connected
        except IncorrectState:
            return False

    async def readiness(self) -> dict[str, str]:
        """What /readyz reports: NATS connected, the CONTENT stream and the buckets present."""
        if not self.connected:
            return {"nats": "disconnected"}
        checks = {"nats": "connected"}
        wanted = (
            ("stream", subjects.STREAM),
            ("key_bucket", KEY_BUCKET.stream),
            ("jobs_bucket", JOBS_BUCKET.stream),
            ("idempotency_bucket", IDEMPOTENCY_BUCKET.stream),
        )
        for name, stream in wanted:
            try:
                async with asyncio.timeout(READY_TIMEOUT):
                    await self.js.stream_info(stream)
                checks[name] = "ok"
            except NotFoundError:
                checks[name] = "missing"
            except BUS_ERRORS:
                checks[name] = "unavailable"
        return checks
