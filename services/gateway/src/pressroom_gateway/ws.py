"""The `/v1/ws` endpoint (docs/protocol.md): one receive loop, one sender task, a dispatch table.

Every outgoing frame goes through the connection's bounded outbox and is written by a single sender task,
so frames never interleave and a client that does not read cannot make the server buffer without bound:
when the outbox stays full the socket is closed with 1013 "client too slow".

A frame that cannot be parsed or served is answered with an `error` frame carrying the request's `ref`;
the connection stays open.

Authentication: a token in the handshake (`Authorization: Bearer …` or `?token=`), or an `auth` frame
first. Until then every other frame is answered `unauthenticated`. A token that does not authenticate,
too many connection attempts from one address or too many open connections of one client get an
`error` frame and the connection is closed (1008 policy violation, 1013 try again later).

Liveness: the server sends WebSocket protocol pings (uvicorn, PRESSROOM_GATEWAY_PING_INTERVAL): a client
that only listens stays connected while it answers them; one that does not is closed. Job events come
from the process's fan-out (fanout.py): a subscribe costs no NATS consumer of its own.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, WebSocket
from pydantic import BaseModel
from starlette.websockets import WebSocketDisconnect, WebSocketState

from pressroom_contracts.protocol import (
    CLOSE_POLICY_VIOLATION,
    CLOSE_TRY_AGAIN_LATER,
    AcceptedFrame,
    AuthFrame,
    CancelFrame,
    ErrorFrame,
    Frame,
    PingFrame,
    PongFrame,
    ProtocolError,
    RegenerateFrame,
    StartFrame,
    SubscribeFrame,
    UnsubscribeFrame,
    parse_client_frame,
)
from pressroom_runtime.logs import get_logger

from .auth import Client, request_token
from .bus import BUS_ERRORS
from .deps import Services, ServicesDep
from .errors import REVOKED, REVOKED_MESSAGE, UNAVAILABLE_MESSAGE, GatewayError, RateLimited, Unauthenticated
from .fanout import Item, Watch
from .metrics import ERRORS, WS_CONNECTIONS, WS_FRAMES, WS_OPEN
from .outbox import Outbox

log = get_logger(__name__)

TOO_SLOW_REASON = "client too slow"
# A stalled client cannot even receive the close frame; stop waiting for it after this long.
CLOSE_TIMEOUT = 5.0
# A client dropped for not keeping up gets its close frame (1013) only once it reads the backlog queued
# before it; the connection holds nothing else meanwhile (its outbox is gone), so it is given longer.
SLOW_CLOSE_TIMEOUT = 30.0

_connection_ids = itertools.count(1)


def close_code(error: GatewayError) -> int:
    """How a connection refused for `error` is closed."""
    return CLOSE_POLICY_VIOLATION if isinstance(error, Unauthenticated) else CLOSE_TRY_AGAIN_LATER


def client_address(websocket: WebSocket) -> str:
    return websocket.client.host if websocket.client else "unknown"


async def admit(websocket: WebSocket, services: Services) -> Client | None:
    """What every WebSocket endpoint checks before authentication: the connection attempts of the
    address, then the handshake's token if there is one. None: no token was given. Raises the
    GatewayError to refuse the connection with."""
    await services.limiter.check_connect_attempt(client_address(websocket))
    token = request_token(websocket)
    if token is None:
        return None
    client = await services.auth.authenticate(token)
    if client is None:
        raise Unauthenticated("the token is not valid (unknown, revoked or expired)")
    return client


@dataclass(frozen=True)
class CloseRequest:
    """Queued behind the frames already in the outbox: the sender closes the socket when it gets here."""

    code: int
    reason: str


class Connection:
    def __init__(self, websocket: WebSocket, services: Services) -> None:
        self.id = next(_connection_ids)
        self.websocket = websocket
        self.services = services
        self.settings = services.settings
        self.outbox: Outbox[str | CloseRequest] = Outbox(self.settings.send_queue)
        self.watches: dict[str, Watch] = {}
        # Jobs this connection stopped watching: what it was given, so a later subscribe resends nothing.
        self.marks: dict[str, int] = {}
        self.client: Client | None = None
        self.closing = False
        self._held = AsyncExitStack()  # the client's connection slot, once authenticated

    async def send(self, frame: Frame) -> None:
        """Queue a frame for the client; serialised here so the sender only writes."""
        if isinstance(frame, ErrorFrame):
            ERRORS.labels(frame.code).inc()
        self.outbox.offer(frame.model_dump_json())

    def _deliver(self, item: Item) -> bool:
        return self.outbox.offer(item.frame)

    async def follow(self, job_id: str, after_seq: int) -> None:
        """Streams the job's events after `after_seq` (and its live text) to this connection."""
        watch = self.watches.get(job_id)
        if watch is not None:  # already streaming everything after its mark: skip what the client has
            watch.mark = max(watch.mark, after_seq)
            return
        hub = self.services.hub
        mark = self.marks.pop(job_id, 0)
        self.watches[job_id] = await hub.watch(job_id, self._deliver, after_seq=after_seq, mark=mark)

    def unfollow(self, job_id: str) -> None:
        watch = self.watches.pop(job_id, None)
        if watch is not None:
            self.marks[job_id] = watch.mark
            self.services.hub.unwatch(watch)

    async def close_after_queued(self, code: int, reason: str) -> None:
        """Close once what is queued has been sent; frames received meanwhile are ignored."""
        if not self.closing:
            self.closing = True
            self.outbox.offer(CloseRequest(code, reason))

    def _revoked(self) -> None:
        """The key this connection authenticated with was revoked: say so, then close."""
        ERRORS.labels(REVOKED).inc()
        self.outbox.offer(ErrorFrame(code=REVOKED, message=REVOKED_MESSAGE).model_dump_json())
        if not self.closing:
            self.closing = True
            self.outbox.offer(CloseRequest(CLOSE_POLICY_VIOLATION, REVOKED))

    async def refuse(self, error: GatewayError, ref: str | None = None) -> None:
        """An `error` frame for `error`, then close."""
        await self.send(ErrorFrame(code=error.code, message=error.message, ref=ref))
        await self.close_after_queued(close_code(error), error.code)

    async def login(self, client: Client) -> None:
        """The connection now acts for `client`; RateLimited when the client has too many open."""
        await self._held.enter_async_context(self.services.limiter.connection_slot(client))
        self._held.callback(self.services.auth.on_revoke(client, self._revoked))
        self.client = client
        log.debug("ws authenticated", conn=self.id, client=client.id)

    async def serve(self) -> None:
        await self.websocket.accept()
        WS_CONNECTIONS.labels("v1").inc()
        WS_OPEN.labels("v1").inc()
        try:
            async with self._held:
                if await self._admit():
                    await self._run()
        finally:
            WS_OPEN.labels("v1").dec()

    async def _admit(self) -> bool:
        try:
            client = await admit(self.websocket, self.services)
            if client is not None:
                await self.login(client)
        except GatewayError as exc:
            log.info("ws refused", conn=self.id, code=exc.code, address=client_address(self.websocket))
            ERRORS.labels(exc.code).inc()
            frame = ErrorFrame(code=exc.code, message=exc.message)
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await self.websocket.send_text(frame.model_dump_json())
                    await self.websocket.close(close_code(exc), exc.code)
            except (TimeoutError, WebSocketDisconnect, RuntimeError, OSError):
                pass
            return False
        return True

    async def _run(self) -> None:
        log.debug("ws connected", conn=self.id, client=self.client.id if self.client else None)
        receiver = asyncio.create_task(self._receive_loop(), name=f"ws-{self.id}-receive")
        sender = asyncio.create_task(self._send_loop(), name=f"ws-{self.id}-send")
        overflow = asyncio.create_task(self.outbox.overflowed.wait(), name=f"ws-{self.id}-overflow")
        tasks = {receiver, sender, overflow}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for job_id in list(self.watches):
                self.unfollow(job_id)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.error("ws connection failed", conn=self.id, exc_info=task.exception())
        if self.outbox.overflowed.is_set():
            await self._close_too_slow()
        log.debug("ws closed", conn=self.id, too_slow=self.outbox.overflowed.is_set())

    async def _receive_loop(self) -> None:
        while True:
            try:
                # While closing, only wait for the client's close reply, and not for long.
                async with asyncio.timeout(CLOSE_TIMEOUT if self.closing else None):
                    message = await self.websocket.receive()
            except TimeoutError:
                return
            if message["type"] == "websocket.disconnect":
                return
            if self.closing:
                continue
            raw = message.get("text")
            if raw is None:
                raw = message.get("bytes") or b""
            await self.handle(raw)

    async def _send_loop(self) -> None:
        try:
            while True:
                for item in await self.outbox.take():
                    if isinstance(item, CloseRequest):
                        async with asyncio.timeout(CLOSE_TIMEOUT):
                            await self.websocket.close(item.code, item.reason)
                        return
                    await self.websocket.send_text(item)
        except (WebSocketDisconnect, RuntimeError, OSError, TimeoutError):
            return  # the client went away; the receive loop sees the disconnect too

    async def _close_too_slow(self) -> None:
        log.warning("closing a client that does not keep up", conn=self.id, queued=self.outbox.qsize())
        if self.websocket.application_state != WebSocketState.CONNECTED:
            return
        try:
            async with asyncio.timeout(SLOW_CLOSE_TIMEOUT):
                await self.websocket.close(CLOSE_TRY_AGAIN_LATER, TOO_SLOW_REASON)
        except (TimeoutError, WebSocketDisconnect, RuntimeError, OSError):
            pass  # returning from the endpoint makes the server drop the transport

    async def handle(self, raw: str | bytes) -> None:
        """Parse one client frame and dispatch it; every failure becomes an `error` frame. Until the
        connection is authenticated, anything but an `auth` frame is answered `unauthenticated`, however
        malformed (authentication comes first on every transport)."""
        try:
            frame = parse_client_frame(raw, self.settings.max_frame_bytes)
        except ProtocolError as exc:
            WS_FRAMES.labels("invalid").inc()
            if self.client is None and exc.kind != "auth":
                await self.send(_unauthenticated(exc.ref))
            else:
                await self.send(exc.frame())
            return
        WS_FRAMES.labels(frame.type).inc()
        if self.client is None and not isinstance(frame, AuthFrame):
            await self.send(_unauthenticated(frame.ref))
            return
        handler = HANDLERS[type(frame)]
        try:
            await handler(self, frame)
        except ProtocolError as exc:
            await self.send(exc.frame())
        except GatewayError as exc:
            await self.send(ErrorFrame(code=exc.code, message=exc.message, ref=frame.ref))
        except BUS_ERRORS as exc:
            log.warning("bus unavailable", conn=self.id, frame=frame.type, error=repr(exc))
            await self.send(ErrorFrame(code="unavailable", message=UNAVAILABLE_MESSAGE, ref=frame.ref))
        except Exception:
            log.exception("frame handler failed", conn=self.id, frame=frame.type)
            await self.send(ErrorFrame(code="internal", message="internal error", ref=frame.ref))


def _unauthenticated(ref: str | None) -> ErrorFrame:
    return ErrorFrame(
        code="unauthenticated",
        message="authenticate first: send an auth frame, or connect with a bearer token",
        ref=ref,
    )


# ---- handlers: one per client frame type ----------------------------------------------------------------


async def on_ping(conn: Connection, frame: PingFrame) -> None:
    await conn.send(PongFrame(ref=frame.ref))


async def on_auth(conn: Connection, frame: AuthFrame) -> None:
    """Success has no reply (the next frames are simply served); a token that does not authenticate gets
    `unauthenticated` and the connection is closed."""
    client = await conn.services.auth.authenticate(frame.token)
    if conn.client is not None:
        if client is None or client.id != conn.client.id:
            raise ProtocolError("invalid_frame", "this connection is already authenticated", frame.ref)
        return
    if client is None:
        await conn.refuse(Unauthenticated("the token is not valid (unknown, revoked or expired)"), frame.ref)
        return
    try:
        await conn.login(client)
    except RateLimited as exc:
        await conn.refuse(exc, frame.ref)


async def on_start(conn: Connection, frame: StartFrame) -> None:
    assert conn.client is not None
    started = await conn.services.jobs.start(conn.client, frame.request)
    await conn.send(AcceptedFrame(job_id=started.job_id, ref=frame.ref))
    # After `accepted`, so the client knows the job id before its first event; the replay from the
    # start of the job still includes job.requested.
    await conn.follow(started.job_id, after_seq=0)


async def on_subscribe(conn: Connection, frame: SubscribeFrame) -> None:
    assert conn.client is not None
    if frame.job_id not in conn.watches:  # already checked when it was subscribed
        await conn.services.jobs.require_owned(conn.client, frame.job_id)
    await conn.follow(frame.job_id, after_seq=frame.after_seq)


async def on_unsubscribe(conn: Connection, frame: UnsubscribeFrame) -> None:
    conn.unfollow(frame.job_id)


async def on_cancel(conn: Connection, frame: CancelFrame) -> None:
    assert conn.client is not None
    await conn.services.jobs.cancel(conn.client, frame.job_id)
    # The request is on the stream; the job's own `job.cancelled` event follows when it takes effect.
    await conn.send(AcceptedFrame(job_id=frame.job_id, ref=frame.ref))


async def on_regenerate(conn: Connection, frame: RegenerateFrame) -> None:
    assert conn.client is not None
    await conn.services.jobs.regenerate(conn.client, frame.job_id, frame)
    await conn.send(AcceptedFrame(job_id=frame.job_id, ref=frame.ref))


Handler = Callable[[Connection, Any], Awaitable[None]]

HANDLERS: dict[type[BaseModel], Handler] = {
    PingFrame: on_ping,
    AuthFrame: on_auth,
    StartFrame: on_start,
    SubscribeFrame: on_subscribe,
    UnsubscribeFrame: on_unsubscribe,
    CancelFrame: on_cancel,
    RegenerateFrame: on_regenerate,
}

router = APIRouter()


@router.websocket("/v1/ws")
async def v1_ws(websocket: WebSocket, services: ServicesDep) -> None:
    await Connection(websocket, services).serve()
