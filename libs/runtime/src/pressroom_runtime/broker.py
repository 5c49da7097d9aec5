"""The broker factory and the one way events are published."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import nats.errors
from faststream.nats import NatsBroker
from faststream.security import SASLPlaintext
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import ServiceUnavailableError
from pydantic import SecretStr
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from pressroom_contracts import access, parties, subjects
from pressroom_contracts.events import Envelope, UsageRecordedEvent, encode_event
from pressroom_contracts.protocol import DeltaMessage

from .logs import get_logger
from .observability import COST, PUBLISHED, broker_middlewares, trace_headers

log = get_logger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# A reply that is late or missing: the server was slow, or a stream is electing its leader.
_LATE = (nats.errors.TimeoutError, nats.errors.NoRespondersError, ServiceUnavailableError)
_again = retry(
    retry=retry_if_exception_type(_LATE),
    stop=stop_after_attempt(4),
    wait=wait_exponential_jitter(multiplier=0.2, max=3),
    reraise=True,
)


def bus_retry(call: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """For a NATS call that is safe to repeat when its reply is late or missing: a publish (the stream
    drops a repeated Nats-Msg-Id), a key-value read, a create that reports an existing key. Tried once
    as it is, then up to four more times, paced: tenacity's set-up costs as much CPU as a publish
    itself (~60 µs), so only a call that failed pays it."""
    retried = _again(call)

    @functools.wraps(call)
    async def tried(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await call(*args, **kwargs)
        except _LATE:
            return await retried(*args, **kwargs)

    return tried


def nats_servers(nats_url: str) -> list[str]:
    """NATS_URL as the server list nats-py takes: one URL, or several separated by commas (a cluster)."""
    return [url.strip() for url in nats_url.split(",") if url.strip()]


def make_broker(
    nats_url: str, name: str, *, user: str | None = None, password: SecretStr | None = None
) -> NatsBroker:
    """`name` is "<service>:<replica>"; the service part labels metrics and traces. With `user`, the
    connection authenticates as that NATS user and uses the inbox prefix its permissions allow."""
    credentials: dict[str, Any] = {}
    if user is not None:
        secret = password.get_secret_value() if password else ""
        credentials = {
            "security": SASLPlaintext(username=user, password=secret),
            "inbox_prefix": access.inbox_prefix(user),
        }
    # Reconnect forever: a service outlives a NATS restart instead of exiting.
    return NatsBroker(
        nats_servers(nats_url),
        name=name,
        **credentials,
        middlewares=broker_middlewares(name.split(":", 1)[0]),
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        connect_timeout=5,
        graceful_timeout=30.0,
        # Per-message "Received/Processed" lines are debug noise; our handlers log what matters.
        log_level=logging.DEBUG,
    )


class Publisher:
    """Publishes stored events with a publish acknowledgement and their de-duplication key.

    Bound to a `service`, it refuses (UndeclaredEvent) any event type that service has not declared in
    pressroom_contracts.parties; every service binds it, only tests that play several parties do not.
    """

    def __init__(self, broker: NatsBroker, timeout: float = 5.0, *, service: str | None = None) -> None:
        self.broker = broker
        self.timeout = timeout
        self.service = service
        self._js: JetStreamContext | None = None
        self._js_of: Client | None = None  # the connection _js belongs to
        if service is not None:
            parties.party(service)  # an unknown name fails at start-up, not at the first publish

    async def publish(self, event: Envelope) -> int:
        """Returns the stream sequence; a duplicate returns the original's sequence."""
        if self.service is not None:
            parties.check_publish(self.service, event.type)
        return await self._publish(event)

    @bus_retry
    async def _publish(self, event: Envelope) -> int:
        ack = await self._jetstream().publish(
            subjects.content(event.job_id, event.type),
            encode_event(event),
            timeout=self.timeout,
            stream=subjects.STREAM,
            # Whoever handles it works in the job's trace.
            headers=trace_headers({"Nats-Msg-Id": event.dedup_key()}, self.service or "pressroom"),
        )
        PUBLISHED.labels(event.type).inc()
        if isinstance(event, UsageRecordedEvent) and not ack.duplicate:
            COST.labels(str(event.data.stage)).inc(event.data.cost_usd)
        return ack.seq

    async def delta(self, job_id: str, stage: str, offset: int, text: str) -> None:
        """Live text on core NATS: not stored, lost if nobody listens, which is fine."""
        if self.service is not None and stage not in parties.party(self.service).streams_live:
            raise parties.UndeclaredEvent(f"{self.service} streams live {stage!r} text it has not declared")
        await self.broker.connection.publish(
            subjects.live(job_id, stage), DeltaMessage(offset=offset, text=text).model_dump_json().encode()
        )

    def _jetstream(self) -> JetStreamContext:
        # Straight to nats-py: FastStream's publish path (its middlewares, a span per message) cost as
        # much CPU as the publish itself, on every one of a job's two dozen events.
        nc = self.broker.connection  # IncorrectState while not connected
        if self._js is None or self._js_of is not nc:
            self._js, self._js_of = nc.jetstream(), nc
        return self._js
