"""The gateway's connection to NATS: one FastStream broker for publishing stored events (through the
runtime's Publisher: stream ack + Nats-Msg-Id) and its nats-py client for replays and live subscriptions."""

from __future__ import annotations

import asyncio

import nats.errors
from faststream.exceptions import IncorrectState
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from pressroom_contracts import subjects
from pressroom_contracts.events import (
    CancelRequested,
    CancelRequestedEvent,
    JobRequested,
    JobRequestedEvent,
    Producer,
)
from pressroom_contracts.ids import new_job_id
from pressroom_contracts.jobs import JobRequest
from pressroom_runtime.broker import Publisher, make_broker
from pressroom_runtime.logs import get_logger

from .settings import GatewaySettings

log = get_logger(__name__)

SERVICE = "gateway"

# What a request handler may get when NATS is down or slow: answered as `unavailable`, not `internal`.
BUS_ERRORS: tuple[type[BaseException], ...] = (nats.errors.Error, asyncio.TimeoutError, IncorrectState)


class Bus:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.broker = make_broker(settings.nats_url, name=f"{SERVICE}:{settings.replica}")
        self.publisher = Publisher(self.broker, timeout=settings.publish_timeout)
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

    def producer(self) -> Producer:
        return Producer(service=SERVICE, replica=self.settings.replica)

    async def start_job(self, request: JobRequest, owner: str | None = None) -> tuple[str, int]:
        """Publishes job.requested for a new job; returns (job id, stream sequence) once the stream has it."""
        job_id = new_job_id()
        event = JobRequestedEvent(
            job_id=job_id, producer=self.producer(), data=JobRequested(request=request, owner=owner)
        )
        seq = await self.publisher.publish(event)
        log.info("job requested", job_id=job_id, seq=seq)
        return job_id, seq

    async def job_exists(self, job_id: str) -> bool:
        try:
            await self.js.get_last_msg(subjects.STREAM, subjects.content(job_id, "job.requested"))
        except NotFoundError:
            return False
        return True

    async def cancel_job(self, job_id: str, reason: str) -> int:
        """Asks persistence to cancel; it answers with job.cancelled on the job's subjects."""
        event = CancelRequestedEvent(
            job_id=job_id, producer=self.producer(), data=CancelRequested(reason=reason)
        )
        seq = await self.publisher.publish(event)
        log.info("cancel requested", job_id=job_id, seq=seq)
        return seq
