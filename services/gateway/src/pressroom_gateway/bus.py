"""The gateway's connection to NATS: one FastStream broker for publishing stored events (through the
runtime's Publisher: stream ack + Nats-Msg-Id) and its nats-py client for replays and live subscriptions.

The Bus is also the gateway's context: request handlers reach the per-gateway parts (authenticator, rate
limiter, moderator) through `bus.part(...)`, and REST handlers that are not given the bus find the one
serving the current request with `current_bus()`.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any, TypeVar

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
from pressroom_contracts.queries import JobQuery
from pressroom_contracts.topology import KEY_BUCKET
from pressroom_runtime.broker import Publisher, make_broker
from pressroom_runtime.logs import get_logger

from . import profiles
from .metrics import JOBS_STARTED
from .settings import GatewaySettings

log = get_logger(__name__)

SERVICE = "gateway"
# Owner of jobs started before clients authenticated (JobRequested.owner is None), and the client id
# /content runs as when anonymous legacy clients are allowed.
ANONYMOUS_ID = "anonymous"
# The owner of a job never changes: remember this many.
OWNER_CACHE_SIZE = 10_000
QUERY_TIMEOUT = 2.0
READY_TIMEOUT = 2.0

# What a request handler may get when NATS is down or slow: answered as `unavailable`, not `internal`.
BUS_ERRORS: tuple[type[BaseException], ...] = (nats.errors.Error, asyncio.TimeoutError, IncorrectState)

T = TypeVar("T")

_current_bus: ContextVar[Bus | None] = ContextVar("pressroom_gateway_bus", default=None)


def current_bus() -> Bus:
    """The bus of the gateway serving the current request (set by the app's middleware)."""
    bus = _current_bus.get()
    if bus is None:
        raise RuntimeError("no gateway request is being served here: pass the bus explicitly")
    return bus


def enter_bus(bus: Bus) -> Token[Bus | None]:
    return _current_bus.set(bus)


def leave_bus(token: Token[Bus | None]) -> None:
    _current_bus.reset(token)


class Bus:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.broker = make_broker(settings.nats_url, name=f"{SERVICE}:{settings.replica}")
        self.publisher = Publisher(self.broker, timeout=settings.publish_timeout)
        self._js: JetStreamContext | None = None
        self._parts: dict[Any, Any] = {}
        self._owners: OrderedDict[str, str] = OrderedDict()

    def part(self, kind: Callable[[Bus], T]) -> T:
        """The one `kind(self)` of this gateway (Authenticator, Limiter, Moderator), made on first use."""
        if kind not in self._parts:
            self._parts[kind] = kind(self)
        part: T = self._parts[kind]
        return part

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

    async def start_job(self, request: JobRequest, owner: str, job_id: str | None = None) -> tuple[str, int]:
        """Publishes job.requested for a new job of `owner`; returns (job id, stream sequence) once the
        stream has it. A given `job_id` (e.g. derived from an idempotency key) published twice within the
        stream's duplicate window is stored once: the second call returns the first one's sequence."""
        fresh = job_id is None
        job_id = job_id or new_job_id()
        # The owner's publishing profile rides on the event: every stage writes in its voice.
        profile = await profiles.load(self.js, owner)
        voice = profile.voice if profile and not profile.voice.empty else None
        template = (profile.link_template if profile else None) or self.settings.public_url_template
        requested = JobRequested(request=request, owner=owner, voice=voice, link_template=template)
        event = JobRequestedEvent(job_id=job_id, producer=self.producer(), data=requested)
        seq = await self.publisher.publish(event)
        if fresh:  # a repeated id may have been stored earlier, by its first caller
            self._remember_owner(job_id, owner)
        JOBS_STARTED.inc()
        log.info("job requested", job_id=job_id, seq=seq, owner=owner)
        return job_id, seq

    async def job_exists(self, job_id: str) -> bool:
        return await self.owner_of(job_id) is not None

    async def owner_of(self, job_id: str) -> str | None:
        """The client id owning `job_id`, or None when there is no such job (or the id is malformed).

        A client may see and control a job only when this equals its id; anything else must be answered
        exactly like a missing job. Read from the job's job.requested on the stream; when the stream no
        longer holds it (expired), from persistence. Jobs from before authentication belong to
        ANONYMOUS_ID. Bus errors propagate (answered as `unavailable`).
        """
        cached = self._owners.get(job_id)
        if cached is not None:
            self._owners.move_to_end(job_id)
            return cached
        try:
            subject = subjects.content(job_id, "job.requested")
        except subjects.SubjectError:
            return None
        try:
            msg = await self.js.get_last_msg(subjects.STREAM, subject)
            owner = _owner_in_event(msg.data)
        except NotFoundError:
            owner = await self._owner_from_persistence(job_id)
        if owner is not None:
            self._remember_owner(job_id, owner)
        return owner

    def _remember_owner(self, job_id: str, owner: str) -> None:
        self._owners[job_id] = owner
        self._owners.move_to_end(job_id)
        while len(self._owners) > OWNER_CACHE_SIZE:
            self._owners.popitem(last=False)

    async def _owner_from_persistence(self, job_id: str) -> str | None:
        body = JobQuery(job_id=job_id).model_dump_json().encode()
        try:
            reply = await self.nc.request(subjects.QUERY_JOB, body, timeout=QUERY_TIMEOUT)
        except nats.errors.NoRespondersError:
            return None  # persistence is not running: only the stream can vouch for a job
        except nats.errors.TimeoutError:
            log.warning("persistence did not answer an owner query", job_id=job_id)
            return None
        try:
            answer = json.loads(reply.data)
            job = answer["job"]
        except (ValueError, KeyError, TypeError):
            return None  # {"error": {"code": "not_found", …}} or something unreadable
        owner = job.get("owner") if isinstance(job, dict) else None
        return owner if isinstance(owner, str) and owner else ANONYMOUS_ID

    async def readiness(self) -> dict[str, str]:
        """What /readyz reports: NATS connected, the CONTENT stream and the API key bucket present."""
        if not self.connected:
            return {"nats": "disconnected"}
        checks = {"nats": "connected"}
        for name, stream in (("stream", subjects.STREAM), ("key_bucket", KEY_BUCKET.stream)):
            try:
                async with asyncio.timeout(READY_TIMEOUT):
                    await self.js.stream_info(stream)
                checks[name] = "ok"
            except NotFoundError:
                checks[name] = "missing"
            except BUS_ERRORS:
                checks[name] = "unavailable"
        return checks

    async def cancel_job(self, job_id: str, reason: str) -> int:
        """Asks persistence to cancel; it answers with job.cancelled on the job's subjects."""
        event = CancelRequestedEvent(
            job_id=job_id, producer=self.producer(), data=CancelRequested(reason=reason)
        )
        seq = await self.publisher.publish(event)
        log.info("cancel requested", job_id=job_id, seq=seq)
        return seq


def _owner_in_event(data: bytes | None) -> str | None:
    """The owner recorded in a stored job.requested (ANONYMOUS_ID when it has none)."""
    try:
        event = json.loads(data or b"")
        owner = event["data"].get("owner")
    except (ValueError, KeyError, TypeError, AttributeError):
        log.warning("unreadable job.requested on the stream")
        return None
    return owner if isinstance(owner, str) and owner else ANONYMOUS_ID
