"""A scripted OpenAI-compatible server for tests: canned or rule-based answers, streamed in the exact
wire format the `openai` SDK parses, with injectable failures and a record of every request.

    llm = ScriptedLLM(default="A post about {topic}.").start()
    llm.when("social", "Short post #tag")          # prompt contains "social" -> this answer
    llm.fail(500, times=2)                          # the next two requests answer HTTP 500
    await client.images.generate(model="dall-e-3", prompt="…", response_format="b64_json")
                                                    # a solid-colour PNG of the requested size
    client = AsyncOpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
    ...
    assert llm.requests[-1].stream

Note: the SDK retries 429/5xx/timeouts itself (max_retries=2 by default); each retry is a request here.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import re
import socket
import struct
import threading
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pressroom_runtime.llm import TextModel
from pressroom_runtime.settings import LLMProfile, LLMSettings

Reply = str | Callable[["RecordedRequest"], str]
Matcher = str | Callable[["RecordedRequest"], bool]

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Bad request (scripted)"),
    401: ("invalid_request_error", "Incorrect API key provided (scripted)"),
    403: ("invalid_request_error", "Forbidden (scripted)"),
    404: ("invalid_request_error", "Not found (scripted)"),
    429: ("rate_limit_exceeded", "Rate limit reached (scripted)"),
    500: ("server_error", "The server had an error (scripted)"),
    503: ("server_error", "The server is overloaded (scripted)"),
}


class ScriptedCut(ConnectionAbortedError):
    """Raised inside a stream to make uvicorn drop the connection, like a provider that fails mid-answer."""


def _not_a_scripted_cut(record: logging.LogRecord) -> bool:
    # uvicorn logs the aborted stream as an application error; it is the script working, not a bug.
    return not (record.exc_info and isinstance(record.exc_info[1], ScriptedCut))


@dataclass
class RecordedRequest:
    path: str  # /v1/completions, /v1/chat/completions or /v1/images/generations
    body: dict[str, Any]
    headers: dict[str, str]
    received_at: float = field(default_factory=time.time)

    @property
    def kind(self) -> str:
        if self.path.endswith("/images/generations"):
            return "image"
        return "chat" if self.path.endswith("/chat/completions") else "completion"

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    @property
    def prompt(self) -> str:
        """The text sent: the completion or image prompt, or the chat messages' text joined by newlines."""
        if self.kind in ("completion", "image"):
            prompt = self.body.get("prompt", "")
            return "\n".join(map(str, prompt)) if isinstance(prompt, list) else str(prompt)
        parts: list[str] = []
        for message in self.body.get("messages", []):
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
        return "\n".join(parts)


@dataclass
class _Failure:
    kind: str  # "status", "hang" or "cut"
    status: int = 500
    message: str | None = None
    seconds: float | None = None  # hang: how long; None = until release() or stop()
    after_chunks: int = 1  # cut: chunks sent before the connection drops


class ScriptedLLM:
    def __init__(
        self,
        default: Reply = "This is a scripted answer from the test model.",
        *,
        model: str = "scripted-model",
        host: str = "127.0.0.1",
        api_key: str | None = None,
        stream_chunks: int = 8,
        chunk_delay: float = 0.01,
    ) -> None:
        self.default: Reply = default
        self.model = model
        self.host = host
        self.api_key = api_key  # when set, other keys get 401 like the real API
        self.stream_chunks = stream_chunks
        self.chunk_delay = chunk_delay
        self._rules: list[tuple[Matcher, Reply]] = []
        self._failures: list[_Failure] = []
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._stopping = threading.Event()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    # -- the script ---------------------------------------------------------------------------------

    def reply(self, text: Reply) -> ScriptedLLM:
        """The answer when no rule matches (a string, or a function of the request)."""
        self.default = text
        return self

    def when(self, match: Matcher, reply: Reply) -> ScriptedLLM:
        """If the prompt contains `match` (or `match(request)` is true), answer `reply`. First rule wins."""
        with self._lock:
            self._rules.append((match, reply))
        return self

    def fail(self, status: int = 500, *, times: int = 1, message: str | None = None) -> ScriptedLLM:
        """The next `times` requests answer HTTP `status` with an OpenAI-style error body."""
        return self._queue(_Failure("status", status=status, message=message), times)

    def hang(self, *, times: int = 1, seconds: float | None = None) -> ScriptedLLM:
        """The next `times` requests get no answer for `seconds` (or until release()), then fail with 504."""
        self._released.clear()
        return self._queue(_Failure("hang", status=504, seconds=seconds), times)

    def cut(self, *, times: int = 1, after_chunks: int = 1) -> ScriptedLLM:
        """The next `times` streaming requests drop the connection after `after_chunks` chunks."""
        return self._queue(_Failure("cut", after_chunks=after_chunks), times)

    def release(self) -> None:
        """Ends every hang now."""
        self._released.set()

    def reset(self) -> None:
        """Back to the default answer: no rules, no pending failures, no recorded requests."""
        with self._lock:
            self._rules.clear()
            self._failures.clear()
            self._requests.clear()
        self._released.set()

    def _queue(self, failure: _Failure, times: int) -> ScriptedLLM:
        with self._lock:
            self._failures.extend([failure] * times)
        return self

    # -- what happened ------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected {count} requests, got {len(self.requests)}")
            time.sleep(0.01)
        return self.requests

    # -- life cycle ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What OPENAI_BASE_URL should be."""
        return f"{self.url}/v1"

    def text_model(self, profile: LLMProfile = LLMProfile.chat) -> TextModel:
        """The model client a stage would use, talking to this server."""
        return TextModel(
            LLMSettings(base_url=self.base_url, api_key=SecretStr("test"), model=self.model, profile=profile)
        )

    def start(self) -> ScriptedLLM:
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))  # we hold the port from here on: no free-port race
        self.port = int(sock.getsockname()[1])
        # log_config/log_level None: leave the test process's logging configuration alone.
        config = uvicorn.Config(
            self._app(), log_config=None, log_level=None, lifespan="off", access_log=False
        )
        error_log = logging.getLogger("uvicorn.error")
        if _not_a_scripted_cut not in error_log.filters:
            error_log.addFilter(_not_a_scripted_cut)
        self._server = uvicorn.Server(config)
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="scripted-llm", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("scripted LLM server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._stopping.set()
        self._released.set()
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> ScriptedLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- HTTP ---------------------------------------------------------------------------------------

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/completions", self._handle, methods=["POST"]),
                Route("/v1/chat/completions", self._handle, methods=["POST"]),
                Route("/v1/images/generations", self._handle, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/health", lambda _: JSONResponse({"status": "ok"}), methods=["GET"]),
            ]
        )

    async def _models(self, request: Request) -> Response:
        return JSONResponse(
            {
                "object": "list",
                "data": [{"id": self.model, "object": "model", "created": 0, "owned_by": "test"}],
            }
        )

    async def _handle(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "Request body is not JSON")
        recorded = RecordedRequest(request.url.path, body, dict(request.headers))
        with self._lock:
            self._requests.append(recorded)
            failure = self._failures.pop(0) if self._failures else None
        if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401)
        if failure is not None and failure.kind == "status":
            return _error(failure.status, failure.message)
        if failure is not None and failure.kind == "hang":
            await self._hang(failure.seconds)
            return _error(504, "Scripted hang ended")
        if recorded.kind == "image":
            return JSONResponse(await asyncio.to_thread(_image_response, recorded))
        text = self._answer(recorded)
        if recorded.stream:
            cut_after = failure.after_chunks if failure is not None and failure.kind == "cut" else None
            return StreamingResponse(
                self._stream(recorded, text, cut_after),
                media_type="text/event-stream",
                headers={"cache-control": "no-cache"},
            )
        return JSONResponse(_full_response(recorded, text))

    async def _hang(self, seconds: float | None) -> None:
        deadline = None if seconds is None else time.monotonic() + seconds
        while not (self._released.is_set() or self._stopping.is_set()):
            if deadline is not None and time.monotonic() >= deadline:
                return
            await asyncio.sleep(0.02)

    def _answer(self, request: RecordedRequest) -> str:
        with self._lock:
            rules = list(self._rules)
        for match, reply in rules:
            hit = match in request.prompt if isinstance(match, str) else match(request)
            if hit:
                return reply if isinstance(reply, str) else reply(request)
        return self.default if isinstance(self.default, str) else self.default(request)

    async def _stream(self, request: RecordedRequest, text: str, cut_after: int | None) -> AsyncIterator[str]:
        ident = _new_id(request)
        created = int(time.time())
        model = request.model or self.model
        usage_wanted = bool((request.body.get("stream_options") or {}).get("include_usage"))
        chat = request.kind == "chat"

        def chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> str:
            payload: dict[str, Any] = {
                "id": ident,
                "object": "chat.completion.chunk" if chat else "text_completion",
                "created": created,
                "model": model,
                "system_fingerprint": None,
                "choices": choices,
            }
            if usage_wanted:
                payload["usage"] = usage  # null on every chunk but the last, as OpenAI does
            return f"data: {json.dumps(payload)}\n\n"

        def choice(piece: str | None, finish: str | None) -> dict[str, Any]:
            if chat:
                delta: dict[str, Any] = {} if piece is None else {"content": piece}
                return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {"index": 0, "text": piece or "", "logprobs": None, "finish_reason": finish}

        if chat:
            yield chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                          "finish_reason": None}])  # fmt: skip
        for sent, piece in enumerate(_split(text, self.stream_chunks)):
            if cut_after is not None and sent >= cut_after:
                raise ScriptedCut("scripted cut")
            await asyncio.sleep(self.chunk_delay)
            yield chunk([choice(piece, None)])
        yield chunk([choice(None, "stop")])
        if usage_wanted:
            yield chunk([], _usage(request, text))
        yield "data: [DONE]\n\n"


def _new_id(request: RecordedRequest) -> str:
    return ("chatcmpl-" if request.kind == "chat" else "cmpl-") + uuid.uuid4().hex[:24]


def _tokens(text: str) -> int:
    return len(text.split())  # a word count stands in for tokens; deterministic and good enough for tests


def _usage(request: RecordedRequest, text: str) -> dict[str, int]:
    prompt, completion = _tokens(request.prompt), _tokens(text)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _split(text: str, chunks: int) -> list[str]:
    """Splits at word boundaries into at most `chunks` pieces that concatenate back to `text`."""
    words = re.findall(r"\s*\S+\s*", text) or [text]
    size = max(1, math.ceil(len(words) / max(1, chunks)))
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


def _full_response(request: RecordedRequest, text: str) -> dict[str, Any]:
    common = {
        "id": _new_id(request),
        "created": int(time.time()),
        "model": request.model or "scripted-model",
        "system_fingerprint": None,
        "usage": _usage(request, text),
    }
    if request.kind == "chat":
        message = {"role": "assistant", "content": text, "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        return {**common, "object": "chat.completion", "choices": [choice]}
    choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}
    return {**common, "object": "text_completion", "choices": [choice]}


_DEFAULT_IMAGE_SIZE = (1024, 1024)
_MAX_IMAGE_SIDE = 4096


def _image_size(size: object) -> tuple[int, int]:
    """ "1792x1024" -> (1792, 1024); "auto", absent or odd sizes -> 1024x1024."""
    match = re.fullmatch(r"(\d+)x(\d+)", str(size or ""))
    if not match:
        return _DEFAULT_IMAGE_SIZE
    width, height = int(match[1]), int(match[2])
    if not (0 < width <= _MAX_IMAGE_SIDE and 0 < height <= _MAX_IMAGE_SIDE):
        return _DEFAULT_IMAGE_SIZE
    return width, height


def solid_png(width: int, height: int, rgb: tuple[int, int, int] = (64, 128, 192)) -> bytes:
    """A valid RGB PNG of one colour; a few kilobytes even at 1792x1024 (it compresses to nothing)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(rgb) * width  # filter type 0, then the pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    pixels = zlib.compress(row * height, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _image_response(request: RecordedRequest) -> dict[str, Any]:
    """What images.generate returns: base64 PNGs (the scripted server never hands out URLs)."""
    width, height = _image_size(request.body.get("size"))
    count = max(1, min(10, int(request.body.get("n") or 1)))
    encoded = base64.b64encode(solid_png(width, height)).decode()
    response: dict[str, Any] = {
        "created": int(time.time()),
        "data": [{"b64_json": encoded, "revised_prompt": None} for _ in range(count)],
    }
    if request.model.startswith("gpt-image"):  # gpt-image-1 reports token usage
        tokens = _tokens(request.prompt)
        response["usage"] = {
            "input_tokens": tokens,
            "output_tokens": 0,
            "total_tokens": tokens,
            "input_tokens_details": {"text_tokens": tokens, "image_tokens": 0},
        }
    return response


def _error(status: int, message: str | None = None) -> JSONResponse:
    kind, default_message = _ERRORS.get(status, ("server_error", f"HTTP {status} (scripted)"))
    body = {"error": {"message": message or default_message, "type": kind, "param": None, "code": None}}
    return JSONResponse(body, status_code=status)
