"""The `/v1/ws` endpoint (DESIGN.md §4): one receive loop, one sender task, a dispatch table.

Every outgoing frame goes through the connection's bounded outbox and is written by a single sender task,
so frames never interleave and a client that does not read cannot make the server buffer without bound:
when the outbox stays full the socket is closed with 1013 "client too slow".

A frame that cannot be parsed or served is answered with an `error` frame carrying the request's `ref`;
the connection stays open.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from pressroom_contracts.protocol import (
    AcceptedFrame,
    AuthFrame,
    CancelFrame,
    ErrorFrame,
    Frame,
    PingFrame,
    PongFrame,
    ProtocolError,
    StartFrame,
    SubscribeFrame,
    UnsubscribeFrame,
    parse_client_frame,
)
from pressroom_runtime.logs import get_logger

from .bus import BUS_ERRORS, Bus
from .fanout import FeedSet
from .outbox import Outbox
from .settings import GatewaySettings

log = get_logger(__name__)

CLOSE_TRY_AGAIN_LATER = 1013  # RFC 6455 §7.4.1: the server is overloaded, here by this client
TOO_SLOW_REASON = "client too slow"
# A stalled client cannot even receive the close frame; stop waiting for it after this long.
CLOSE_TIMEOUT = 5.0

_connection_ids = itertools.count(1)


def frame_size(raw: str | bytes) -> int:
    """Size in bytes as received (text frames arrive decoded)."""
    if isinstance(raw, bytes):
        return len(raw)
    return len(raw) if raw.isascii() else len(raw.encode())


class Connection:
    def __init__(self, websocket: WebSocket, bus: Bus, settings: GatewaySettings) -> None:
        self.id = next(_connection_ids)
        self.websocket = websocket
        self.bus = bus
        self.settings = settings
        self.outbox: Outbox[str] = Outbox(settings.send_queue)
        self.feeds = FeedSet(bus.nc, self.send)

    async def send(self, frame: Frame) -> None:
        """Queue a frame for the client; serialised here so the sender only writes."""
        await self.outbox.put(frame.model_dump_json())

    async def serve(self) -> None:
        await self.websocket.accept()
        log.debug("ws connected", conn=self.id)
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
            await self.feeds.close()
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.error("ws connection failed", conn=self.id, exc_info=task.exception())
        if self.outbox.overflowed.is_set():
            await self._close_too_slow()
        log.debug("ws closed", conn=self.id, too_slow=self.outbox.overflowed.is_set())

    async def _receive_loop(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text")
            if raw is None:
                raw = message.get("bytes") or b""
            await self.handle(raw)

    async def _send_loop(self) -> None:
        try:
            while True:
                await self.websocket.send_text(await self.outbox.get())
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the client went away; the receive loop sees the disconnect too

    async def _close_too_slow(self) -> None:
        log.warning("closing a client that does not keep up", conn=self.id, queued=self.outbox.qsize())
        if self.websocket.application_state != WebSocketState.CONNECTED:
            return
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.websocket.close(CLOSE_TRY_AGAIN_LATER, TOO_SLOW_REASON)
        except (TimeoutError, WebSocketDisconnect, RuntimeError, OSError):
            pass  # returning from the endpoint makes the server drop the transport

    async def handle(self, raw: str | bytes) -> None:
        """Parse one client frame and dispatch it; every failure becomes an `error` frame."""
        try:
            if frame_size(raw) > self.settings.max_frame_bytes:
                raise ProtocolError(
                    "frame_too_large", f"frames are limited to {self.settings.max_frame_bytes} bytes"
                )
            frame = parse_client_frame(raw)
        except ProtocolError as exc:
            await self.send(exc.frame())
            return
        handler = HANDLERS[type(frame)]
        try:
            await handler(self, frame)
        except ProtocolError as exc:
            await self.send(exc.frame())
        except BUS_ERRORS as exc:
            log.warning("bus unavailable", conn=self.id, frame=frame.type, error=repr(exc))
            await self.send(
                ErrorFrame(
                    code="unavailable", message="the message bus is unavailable; try again", ref=frame.ref
                )
            )
        except Exception:
            log.exception("frame handler failed", conn=self.id, frame=frame.type)
            await self.send(ErrorFrame(code="internal", message="internal error", ref=frame.ref))


# ---- handlers: one per client frame type ----------------------------------------------------------------


async def on_ping(conn: Connection, frame: PingFrame) -> None:
    await conn.send(PongFrame(ref=frame.ref))


async def on_auth(conn: Connection, frame: AuthFrame) -> None:
    """Accepted and ignored until authentication lands; no reply frame exists for success."""


async def on_start(conn: Connection, frame: StartFrame) -> None:
    job_id, _ = await conn.bus.start_job(frame.request, owner=None)
    await conn.send(AcceptedFrame(job_id=job_id, ref=frame.ref))
    # After `accepted`, so the client knows the job id before its first event; the replay from the
    # start of the job still includes job.requested.
    await conn.feeds.subscribe(job_id, after_seq=0)


async def on_subscribe(conn: Connection, frame: SubscribeFrame) -> None:
    await conn.feeds.subscribe(frame.job_id, after_seq=frame.after_seq)


async def on_unsubscribe(conn: Connection, frame: UnsubscribeFrame) -> None:
    await conn.feeds.unsubscribe(frame.job_id)


async def on_cancel(conn: Connection, frame: CancelFrame) -> None:
    if not await conn.bus.job_exists(frame.job_id):
        raise ProtocolError("not_found", f"no job {frame.job_id}", frame.ref)
    await conn.bus.cancel_job(frame.job_id, reason="cancelled by the user")
    # The request is on the stream; the job's own `job.cancelled` event follows when it takes effect.
    await conn.send(AcceptedFrame(job_id=frame.job_id, ref=frame.ref))


Handler = Callable[[Connection, Any], Awaitable[None]]

HANDLERS: dict[type[Frame], Handler] = {
    PingFrame: on_ping,
    AuthFrame: on_auth,
    StartFrame: on_start,
    SubscribeFrame: on_subscribe,
    UnsubscribeFrame: on_unsubscribe,
    CancelFrame: on_cancel,
}


def build_router(bus: Bus, settings: GatewaySettings) -> APIRouter:
    router = APIRouter()

    @router.websocket("/v1/ws")
    async def v1_ws(websocket: WebSocket) -> None:
        await Connection(websocket, bus, settings).serve()

    return router
