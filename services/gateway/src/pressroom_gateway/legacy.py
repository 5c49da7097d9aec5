"""`/content`: the original single-shot protocol, kept for existing clients (docs/protocol.md).

The client sends one `{"topic": str, "research": bool}` message (`research` defaults to false here,
as the original clients always sent it). The gateway starts a job with the other options at their
defaults, describes each step in words as `progress_event` messages, then sends `results` (assembled from
the events it saw) or `error`, and closes. The job itself does not depend on the client staying.

Auth: a token as `?token=` or `Authorization: Bearer …`. Without one the connection is refused with an
`error` message, unless PRESSROOM_GATEWAY_ALLOW_ANONYMOUS_LEGACY is set: then it runs as the client
"anonymous", so clients written before authentication existed work unchanged. The limits and the topic
moderation of /v1/ws apply; each refusal is an `error` message "<code>: <message>" with the code and
message /v1/ws would answer, and the connection is closed (1008 after `unauthenticated` or a revoked
key, 1013 after `rate_limited`).
"""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from typing import Any

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from pressroom_contracts.events import (
    EVENT_ADAPTER,
    BlogCompletedEvent,
    Event,
    ImageCompletedEvent,
    JobCancelledEvent,
    JobCompletedEvent,
    JobFailedEvent,
    JobRequestedEvent,
    ResearchCompletedEvent,
    SocialCompletedEvent,
    StageFailedEvent,
    StageProgressEvent,
)
from pressroom_contracts.jobs import JobRequest
from pressroom_contracts.protocol import (
    CLOSE_GOING_AWAY,
    CLOSE_POLICY_VIOLATION,
    LegacyMessage,
    LegacyRequest,
    ProtocolError,
    describe_validation_error,
    load_json,
)
from pressroom_runtime.logs import get_logger
from pressroom_runtime.words import counted

from .auth import ANONYMOUS, Client
from .bus import BUS_ERRORS
from .deps import Services, ServicesDep
from .errors import REVOKED, REVOKED_MESSAGE, UNAVAILABLE_MESSAGE, GatewayError, Unauthenticated
from .fanout import Item, Watch
from .metrics import ERRORS, WS_CONNECTIONS, WS_OPEN
from .outbox import Outbox
from .ws import (
    CLOSE_TIMEOUT,
    CLOSE_TRY_AGAIN_LATER,
    SLOW_CLOSE_TIMEOUT,
    TOO_SLOW_REASON,
    admit,
    close_code,
)

log = get_logger(__name__)


def parse_request(raw: str | bytes, max_bytes: int) -> JobRequest:
    """The client's one message as a job request; ProtocolError with the code /v1/ws would answer
    (`frame_too_large`, `invalid_json`, `invalid_request`) otherwise."""
    data = load_json(raw, max_bytes)
    try:
        legacy = LegacyRequest.model_validate(data)
        return JobRequest(topic=legacy.topic, research=legacy.research)
    except ValidationError as exc:
        raise ProtocolError("invalid_request", describe_validation_error(exc)) from None


class Transcript:
    """What a `/content` client is told about a job, built up event by event (pure logic, no I/O)."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.finished = False
        self.revoked = False  # ended by the client's key being revoked
        self.blog: dict[str, str] | None = None
        self.social: dict[str, str] = {}
        self.image_key: str | None = None

    def apply(self, event: Event) -> LegacyMessage | None:
        """The message to send for `event`, if any; sets `finished` on the job's end."""
        match event:
            case JobRequestedEvent():
                mode = "with research" if event.data.request.research else "without research"
                return _progress(f"Started writing about '{event.data.request.topic}' {mode}")
            case ResearchCompletedEvent():
                if event.data.skipped:
                    return _progress(f"Research skipped: {event.data.reason or 'not requested'}")
                return _progress(f"Research done: {counted(len(event.data.sources), 'source')} found")
            case StageProgressEvent():
                return _progress(event.data.message)
            case BlogCompletedEvent():
                self.blog = {"title": event.data.title, "markdown": event.data.markdown}
                return _progress(f"Blog post written: '{event.data.title}' ({event.data.word_count} words)")
            case SocialCompletedEvent():
                self.social[str(event.data.platform)] = event.data.text
                return _progress(f"{event.data.platform} post ready")
            case ImageCompletedEvent():
                self.image_key = event.data.object_key
                return _progress("Illustration ready")
            case StageFailedEvent():
                retry = ", retrying" if event.data.retryable else ""
                return _progress(f"{event.data.stage} step failed: {event.data.message}{retry}")
            case JobCompletedEvent():
                self.finished = True
                return LegacyMessage(type="results", payload=self._results(event))
            case JobFailedEvent():
                self.finished = True
                return LegacyMessage(type="error", payload=f"{event.data.stage} failed: {event.data.message}")
            case JobCancelledEvent():
                self.finished = True
                return LegacyMessage(type="error", payload=f"job cancelled: {event.data.reason}")
        return None  # usage.recorded and anything newer: not part of the old protocol

    def _results(self, completed: JobCompletedEvent) -> dict[str, Any]:
        blog = self.blog or {"title": completed.data.blog_title, "markdown": ""}
        return {
            "job_id": self.job_id,
            "blog": blog,
            "social": self.social,
            "image": {"object_key": self.image_key or completed.data.image_key},
        }


def _progress(text: str) -> LegacyMessage:
    return LegacyMessage(type="progress_event", payload=text)


class LegacySession:
    def __init__(self, websocket: WebSocket, services: Services) -> None:
        self.websocket = websocket
        self.services = services
        self.settings = services.settings
        self.outbox: Outbox[Item | str] = Outbox(self.settings.send_queue)

    async def serve(self) -> None:
        await self.websocket.accept()
        WS_CONNECTIONS.labels("content").inc()
        WS_OPEN.labels("content").inc()
        try:
            async with AsyncExitStack() as held:
                try:
                    client = await self._authenticate()
                    await held.enter_async_context(self.services.limiter.connection_slot(client))
                    held.callback(self.services.auth.on_revoke(client, lambda: self.outbox.offer(REVOKED)))
                except GatewayError as exc:
                    await self._refuse(exc)
                    return
                await self._serve(client)
        finally:
            WS_OPEN.labels("content").dec()

    async def _authenticate(self) -> Client:
        client = await admit(self.websocket, self.services)
        if client is not None:
            return client
        if self.settings.allow_anonymous_legacy:
            return ANONYMOUS
        raise Unauthenticated("authentication required: connect with ?token=<api key> or a bearer token")

    async def _refuse(self, error: GatewayError) -> None:
        log.info("/content refused", code=error.code)
        ERRORS.labels(error.code).inc()
        await self._finish(
            LegacyMessage(type="error", payload=f"{error.code}: {error.message}"), close_code(error)
        )

    async def _serve(self, client: Client) -> None:
        try:
            async with asyncio.timeout(self.settings.content_request_timeout):
                raw = await self._receive_one()
        except WebSocketDisconnect:
            return
        except TimeoutError:
            await self._close(CLOSE_GOING_AWAY, "no request")
            return
        try:
            request = parse_request(raw, self.settings.max_frame_bytes)
        except ProtocolError as exc:
            ERRORS.labels(exc.code).inc()
            await self._finish(LegacyMessage(type="error", payload=f"{exc.code}: {exc.message}"))
            return
        hub = self.services.hub
        try:
            job_id = (await self.services.jobs.start(client, request)).job_id
            watch: Watch = await hub.watch(job_id, self.outbox.offer, deltas=False)
        except GatewayError as exc:
            await self._refuse(exc)
            return
        except BUS_ERRORS as exc:
            log.warning("could not start or watch a /content job", error=repr(exc))
            ERRORS.labels("unavailable").inc()
            await self._finish(LegacyMessage(type="error", payload=f"unavailable: {UNAVAILABLE_MESSAGE}"))
            return
        try:
            await self._stream(Transcript(job_id))
        finally:
            hub.unwatch(watch)

    async def _receive_one(self) -> str | bytes:
        message = await self.websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        text = message.get("text")
        return text if text is not None else (message.get("bytes") or b"")

    async def _stream(self, transcript: Transcript) -> None:
        """Relays the job until it ends, the client leaves, or the client cannot keep up."""
        gone = asyncio.create_task(self._wait_disconnect())
        overflow = asyncio.create_task(self.outbox.overflowed.wait())
        try:
            while not transcript.finished:
                next_frame = asyncio.create_task(self.outbox.get())
                await asyncio.wait({next_frame, gone, overflow}, return_when=asyncio.FIRST_COMPLETED)
                if not next_frame.done():
                    next_frame.cancel()
                    if overflow.done():
                        await self._close(CLOSE_TRY_AGAIN_LATER, TOO_SLOW_REASON, SLOW_CLOSE_TIMEOUT)
                    return
                for message in self._translate(transcript, next_frame.result()):
                    await self.websocket.send_json(message.model_dump(mode="json"))
            if transcript.revoked:
                await self._close(CLOSE_POLICY_VIOLATION, REVOKED)
            else:
                await self._close(1000, "")
        except (WebSocketDisconnect, RuntimeError, OSError):
            return
        finally:
            gone.cancel()
            overflow.cancel()

    @staticmethod
    def _translate(transcript: Transcript, item: Item | str) -> list[LegacyMessage]:
        if isinstance(item, str):  # the key was revoked: the transcript ends here
            transcript.finished = transcript.revoked = True
            return [LegacyMessage(type="error", payload=f"{REVOKED}: {REVOKED_MESSAGE}")]
        if item.kind == "event":
            events = [json.loads(item.envelope or "{}")]
        elif item.kind == "resync":  # the job's start expired: relay what remains, in order
            events = list(json.loads(item.frame)["state"].get("events", []))
        else:
            return []
        messages = []
        for raw in events:
            message = _apply(transcript, raw)
            if message is not None:
                messages.append(message)
            if transcript.finished:
                break
        return messages

    async def _wait_disconnect(self) -> None:
        # The client sends nothing after its request; anything else it sends is ignored.
        while (await self.websocket.receive())["type"] != "websocket.disconnect":
            pass

    async def _finish(self, message: LegacyMessage, code: int = 1000) -> None:
        try:
            await self.websocket.send_json(message.model_dump(mode="json"))
            await self._close(code, "")
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass

    async def _close(self, code: int, reason: str, timeout: float = CLOSE_TIMEOUT) -> None:
        if self.websocket.application_state != WebSocketState.CONNECTED:
            return
        try:
            async with asyncio.timeout(timeout):
                await self.websocket.close(code, reason)
        except (TimeoutError, WebSocketDisconnect, RuntimeError, OSError):
            pass


def _apply(transcript: Transcript, raw: dict[str, Any]) -> LegacyMessage | None:
    try:
        event = EVENT_ADAPTER.validate_python(raw)
    except ValidationError as exc:
        log.warning("skipping an event /content cannot read", error=str(exc))
        return None
    return transcript.apply(event)


router = APIRouter()


@router.websocket("/content")
async def content(websocket: WebSocket, services: ServicesDep) -> None:
    await LegacySession(websocket, services).serve()
