"""The gateway WebSocket protocol (`/v1/ws`, docs/protocol.md) and the `/content` compatibility frames.

Client frames are validated with `parse_client_frame`, which turns every problem into a
`ProtocolError` carrying the error code, a message naming the offending field, and the `ref`
of the request it answers, so the gateway can reply with an `error` frame and keep the connection.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from .jobs import JobRequest, RegenerateRequest

MAX_FRAME_BYTES = 64 * 1024
# No frame or request body legitimately nests deeper; a deeper one is refused before it is parsed.
MAX_JSON_DEPTH = 32
# Stream sequences are unsigned 64-bit on the server; nothing above this is one.
MAX_SEQ = 2**63 - 1

_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_JSON_NESTING = re.compile(r"[\[\]{}]")


def json_too_deep(raw: str | bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text nests arrays and objects deeper than `limit` (strings are skipped)."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    depth = 0
    for match in _JSON_NESTING.finditer(_JSON_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


Ref = Annotated[str | None, Field(default=None, max_length=64, description="Echoed in the reply.")]


class Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- client → server ------------------------------------------------------------------------------------
# A `job_id` is not checked against the id pattern here: a malformed id names no job, so the gateway
# answers it `not_found`, as over REST where the id is part of the path.


class AuthFrame(Frame):
    type: Literal["auth"]
    token: str
    ref: Ref = None


class StartFrame(Frame):
    type: Literal["start"]
    request: JobRequest
    ref: Ref = None


class SubscribeFrame(Frame):
    type: Literal["subscribe"]
    job_id: str
    after_seq: Annotated[int, Field(ge=0, le=MAX_SEQ)] = 0
    ref: Ref = None


class UnsubscribeFrame(Frame):
    type: Literal["unsubscribe"]
    job_id: str
    ref: Ref = None


class CancelFrame(Frame):
    type: Literal["cancel"]
    job_id: str
    ref: Ref = None


class RegenerateFrame(RegenerateRequest):
    """Produce one stage again (`stage`, and for social optionally one `platform`), as over REST."""

    type: Literal["regenerate"]
    job_id: str
    ref: Ref = None


class PingFrame(Frame):
    type: Literal["ping"]
    ref: Ref = None


ClientFrame = Annotated[
    AuthFrame | StartFrame | SubscribeFrame | UnsubscribeFrame | CancelFrame | RegenerateFrame | PingFrame,
    Field(discriminator="type"),
]
CLIENT_FRAME_ADAPTER: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)
CLIENT_FRAME_TYPES = ("auth", "start", "subscribe", "unsubscribe", "cancel", "regenerate", "ping")


# ---- server → client ------------------------------------------------------------------------------------


class AcceptedFrame(Frame):
    type: Literal["accepted"] = "accepted"
    job_id: str
    ref: str | None = None


class EventFrame(Frame):
    type: Literal["event"] = "event"
    job_id: str
    seq: int = Field(description="Stream sequence: send it back as after_seq to resume.")
    event: dict[str, Any]


class DeltaFrame(Frame):
    type: Literal["delta"] = "delta"
    job_id: str
    stage: str
    offset: int = Field(description="Character offset of `text` within the stage's output.")
    text: str


class ResyncFrame(Frame):
    type: Literal["resync"] = "resync"
    job_id: str
    seq: int
    state: dict[str, Any]


class ErrorFrame(Frame):
    type: Literal["error"] = "error"
    code: str
    message: str
    ref: str | None = None


class PongFrame(Frame):
    type: Literal["pong"] = "pong"
    ref: str | None = None


ServerFrame = AcceptedFrame | EventFrame | DeltaFrame | ResyncFrame | ErrorFrame | PongFrame
SERVER_FRAME_ADAPTER: TypeAdapter[ServerFrame] = TypeAdapter(
    Annotated[ServerFrame, Field(discriminator="type")]
)

# How the gateway closes a `/v1/ws` or `/content` connection (RFC 6455 §7.4.1 codes); a refusal is preceded
# by an `error` frame that says why.
CLOSE_GOING_AWAY = 1001  # /content only: reason "no request", the client never sent its request
CLOSE_POLICY_VIOLATION = 1008  # the token did not authenticate (`unauthenticated`), or reason "revoked"
CLOSE_TRY_AGAIN_LATER = 1013  # too many connections (`rate_limited`), or reason "client too slow"


def parse_server_frame(raw: str | bytes) -> ServerFrame:
    """A frame from the gateway; raises pydantic.ValidationError for anything this version does not know."""
    return SERVER_FRAME_ADAPTER.validate_json(raw)


class DeltaMessage(BaseModel):
    """Payload of a `live.<job>.<stage>.delta` message on core NATS."""

    model_config = ConfigDict(extra="forbid")

    offset: int = Field(ge=0)
    text: str


# ---- errors ---------------------------------------------------------------------------------------------


class ProtocolError(Exception):
    def __init__(self, code: str, message: str, ref: str | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref
        self.kind = kind  # the frame's type, when it has a known one

    def frame(self) -> ErrorFrame:
        return ErrorFrame(code=self.code, message=self.message, ref=self.ref)


def describe_validation_error(error: ValidationError, skip: int = 0) -> str:
    """'platforms[2]: Input should be …' for the first problems, naming each field by its path."""
    return describe_errors(error.errors(), skip)


def describe_errors(errors: Sequence[Any], skip: int = 0) -> str:
    """describe_validation_error for the error dicts pydantic (or FastAPI) lists."""
    parts = []
    for item in list(errors)[:3]:
        loc = tuple(item.get("loc", ()))[skip:]
        path = ""
        for token in loc:
            path += f"[{token}]" if isinstance(token, int) else (f".{token}" if path else str(token))
        message = item.get("msg", "invalid")
        if item.get("type") == "extra_forbidden":
            message = "unknown field"
        parts.append(f"{path}: {message}" if path else message)
    return "; ".join(parts) or "invalid request"


def frame_size(raw: str | bytes) -> int:
    """Size in bytes as received (text frames arrive decoded)."""
    if isinstance(raw, bytes):
        return len(raw)
    return len(raw) if raw.isascii() else len(raw.encode())


def load_json(raw: str | bytes, max_bytes: int = MAX_FRAME_BYTES) -> Any:
    """A client message's JSON value; ProtocolError `frame_too_large` or `invalid_json` otherwise (the
    nesting is checked before parsing: a deep one would exhaust the parser's stack)."""
    if frame_size(raw) > max_bytes:
        raise ProtocolError("frame_too_large", f"frames are limited to {max_bytes} bytes")
    if json_too_deep(raw):
        raise ProtocolError("invalid_json", f"frame is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError("invalid_json", f"frame is not valid JSON: {exc}") from None


def parse_client_frame(raw: str | bytes, max_bytes: int = MAX_FRAME_BYTES) -> ClientFrame:
    """The frame, or ProtocolError: `frame_too_large`, `invalid_json`, `invalid_frame` (not an object),
    `unknown_type`, `invalid_request` (a field, named by its path, as REST names a body's)."""
    data = load_json(raw, max_bytes)
    if not isinstance(data, dict):
        raise ProtocolError("invalid_frame", "a frame must be a JSON object with a 'type'")
    ref = data.get("ref") if isinstance(data.get("ref"), str) else None
    kind = data.get("type")
    if kind not in CLIENT_FRAME_TYPES:
        raise ProtocolError(
            "unknown_type",
            f"unknown frame type {kind!r}; expected one of {', '.join(CLIENT_FRAME_TYPES)}",
            ref,
        )
    try:
        return CLIENT_FRAME_ADAPTER.validate_python(data)
    except ValidationError as exc:
        # Drop the union tag from the location, and a start frame's "request" too: "topic: …".
        skip = 2 if kind == "start" and all(e["loc"][1:2] == ("request",) for e in exc.errors()) else 1
        raise ProtocolError("invalid_request", describe_validation_error(exc, skip=skip), ref, kind) from None


# ---- /content compatibility (the original single-shot protocol) -----------------------------------------


class LegacyRequest(Frame):
    topic: str
    research: bool = False


class LegacyMessage(BaseModel):
    type: Literal["progress_event", "results", "error"]
    payload: Any
