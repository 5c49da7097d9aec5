"""Following a job over the gateway's WebSocket (`/v1/ws`, docs/protocol.md).

`follow` starts a job (or subscribes to one), hands every stored event and live text delta to a
`Watcher`, and returns the job's terminal event. Frames are the contracts' protocol models both ways.
When the connection drops after the job was accepted it reconnects (websockets' own retry with backoff)
and resumes with `subscribe {after_seq}`; event ids it has already handled are never handed on again.
Before the job is accepted nothing is retried: the job may or may not exist, and starting it again could
start it twice. Liveness is the WebSocket protocol's own: websockets answers the gateway's pings.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import websockets.asyncio.client
from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from pressroom_contracts.events import EVENT_ADAPTER, TERMINAL_TYPES, Event
from pressroom_contracts.jobs import JobRequest
from pressroom_contracts.protocol import (
    CLOSE_POLICY_VIOLATION,
    AcceptedFrame,
    DeltaFrame,
    ErrorFrame,
    EventFrame,
    PongFrame,
    ResyncFrame,
    ServerFrame,
    StartFrame,
    SubscribeFrame,
    parse_server_frame,
)

from .errors import AuthRefused, ClientError, Unreachable, reason
from .settings import ws_url

START_REF = "start"
SUBSCRIBE_REF = "subscribe"
MAX_RETRIES = 8  # failed attempts in a row before giving up (websockets backs off between them)
MAX_FRAME_BYTES = 16 * 1024 * 1024  # a resync frame carries a whole job
# Error codes that mean the key is no good: it does not authenticate, or it was revoked while connected.
KEY_REFUSED = frozenset({"unauthenticated", "revoked"})
UNAVAILABLE = "unavailable"  # the gateway is up but its message bus is not


class Watcher(Protocol):
    def accepted(self, job_id: str) -> None: ...
    def event(self, event: Event) -> None: ...
    def delta(self, frame: DeltaFrame) -> None: ...
    def notice(self, message: str) -> None: ...


class Session:
    """What the client knows of the job across connections: its id, the last stream sequence handled
    and the ids of the events handed to the watcher."""

    def __init__(
        self, gateway: str, watcher: Watcher, request: JobRequest | None, job_id: str | None
    ) -> None:
        self.gateway = gateway
        self.watcher = watcher
        self.request = request
        self.job_id = job_id
        self.seq = 0
        self.seen: set[str] = set()
        self.failures = 0
        self.unknown: set[str] = set()

    def opening(self) -> StartFrame | SubscribeFrame:
        if self.job_id is not None:
            return SubscribeFrame(type="subscribe", job_id=self.job_id, after_seq=self.seq, ref=SUBSCRIBE_REF)
        assert self.request is not None
        return StartFrame(type="start", request=self.request, ref=START_REF)

    async def serve(self, ws: ClientConnection) -> Event | None:
        """Runs one connection; the terminal event, or None when the connection ended first."""
        await ws.send(self.opening().model_dump_json(exclude_none=True))
        async for raw in ws:
            try:
                frame = parse_server_frame(raw)
            except ValidationError:
                self._once("frame", "ignored a frame this client does not understand")
                continue
            if (end := self.handle(frame)) is not None:
                return end
        return None

    def handle(self, frame: ServerFrame) -> Event | None:
        if isinstance(frame, ErrorFrame):
            self.refused(frame)
            return None
        if isinstance(frame, AcceptedFrame):
            if frame.ref == START_REF and self.job_id is None:
                self.job_id = frame.job_id
                self.watcher.accepted(frame.job_id)
            return None
        if isinstance(frame, PongFrame) or frame.job_id != self.job_id:
            return None
        self.failures = 0  # the job's own frames flow again
        if isinstance(frame, EventFrame):
            if frame.seq <= self.seq:
                return None
            self.seq = frame.seq
            return self.stored(frame.event)
        if isinstance(frame, ResyncFrame):
            # The stream no longer holds the start of the job: what remains of it, in order.
            self.seq = max(self.seq, frame.seq)
            for raw in frame.state.get("events", []):
                if (end := self.stored(raw)) is not None:
                    return end
            return None
        if isinstance(frame, DeltaFrame):
            self.watcher.delta(frame)
        return None

    def stored(self, raw: dict[str, Any]) -> Event | None:
        try:
            event = EVENT_ADAPTER.validate_python(raw)
        except ValidationError:
            kind = str(raw.get("type")) if isinstance(raw, dict) else "?"
            self._once(kind, f"ignored an event this client does not understand ({kind})")
            return None
        if event.id in self.seen:
            return None
        self.seen.add(event.id)
        self.watcher.event(event)
        return event if event.type in TERMINAL_TYPES else None

    def refused(self, frame: ErrorFrame) -> None:
        what = f"{frame.message} ({frame.code})"
        if frame.code in KEY_REFUSED:
            raise AuthRefused(frame.message)
        if frame.code == UNAVAILABLE:
            raise Unreachable(f"the gateway cannot serve the job now: {what}")
        if frame.ref == START_REF:
            raise ClientError(f"the gateway refused the job: {what}")
        if frame.ref == SUBSCRIBE_REF:
            raise ClientError(f"cannot follow job {self.job_id}: {what}")
        if frame.ref is None:  # the connection itself was refused (e.g. too many open)
            raise ClientError(f"the gateway refused the connection: {what}")
        self.watcher.notice(f"gateway: {what}")

    def closed(self, ws: ClientConnection) -> None:
        """The connection ended before the job did: raise, or say so and let the caller reconnect."""
        code, why = ws.close_code, ws.close_reason
        if code == CLOSE_POLICY_VIOLATION:  # after an `unauthenticated` error frame
            raise AuthRefused(why or "")
        how = f"{code} {why}".strip() if code is not None else "dropped"
        if self.job_id is None:
            raise Unreachable(
                f"the connection closed ({how}) before the gateway accepted the job; "
                "it may have started anyway: `pressroom jobs list`"
            )
        self._retry(f"connection closed ({how})")

    def connect_failed(self, exc: Exception) -> Exception | None:
        """websockets' process_exception: None retries the connection, an exception ends `follow`."""
        if isinstance(exc, InvalidStatus) and exc.response.status_code in (401, 403):
            return AuthRefused()
        if self.job_id is None:
            return Unreachable(f"cannot reach the gateway at {self.gateway} ({reason(exc)}); is it running?")
        if websockets.asyncio.client.process_exception(exc) is not None:  # not a transient failure
            return Unreachable(f"the gateway at {self.gateway} refused to reconnect ({reason(exc)})")
        try:
            self._retry(f"gateway unreachable ({reason(exc)})")
        except ClientError as error:
            return error
        return None

    def _retry(self, what: str) -> None:
        self.failures += 1
        if self.failures > MAX_RETRIES:
            raise Unreachable(f"lost the gateway at {self.gateway}: {what}")
        self.watcher.notice(f"{what}; resuming job {self.job_id} after event {self.seq}")

    def _once(self, key: str, message: str) -> None:
        if key not in self.unknown:
            self.unknown.add(key)
            self.watcher.notice(message)


async def follow(
    gateway: str,
    token: str | None,
    watcher: Watcher,
    *,
    request: JobRequest | None = None,
    job_id: str | None = None,
) -> Event:
    """Starts `request` (or follows `job_id`) and returns the job's terminal event."""
    if (request is None) == (job_id is None):
        raise TypeError("follow() needs a request or a job id")
    session = Session(gateway, watcher, request, job_id)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    connections = connect(
        ws_url(gateway),
        additional_headers=headers,
        process_exception=session.connect_failed,
        open_timeout=10,
        max_size=MAX_FRAME_BYTES,
    )
    async for ws in connections:
        try:
            end = await session.serve(ws)
        except ConnectionClosed:
            end = None
        if end is not None:
            return end
        session.closed(ws)
        await asyncio.sleep(min(10.0, 0.25 * 2**session.failures))
    raise AssertionError("websockets' connect() iterates until it raises")  # pragma: no cover
