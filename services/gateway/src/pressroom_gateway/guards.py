"""What the gateway checks of every request before any route sees it (ASGI middleware).

- `Host` must name this gateway (PRESSROOM_GATEWAY_ALLOWED_HOSTS, loopback names by default): a page on
  another site cannot reach a local gateway through DNS rebinding. The health and metrics endpoints are
  exempt, so probes that address the pod or container by IP keep working.
- `Origin`, when a browser sends one (every WebSocket handshake, EventSource, fetch), must be the
  gateway's own origin or one of PRESSROOM_GATEWAY_ALLOWED_ORIGINS: a page on another site cannot open
  a WebSocket or an event stream with the user's credentials.
- A request body is read whole, at most `max_body_bytes`, and a JSON body nested deeper than the
  protocol's limit is refused before it is parsed (a deep one would exhaust the parser's stack).

Each refusal has the gateway's error body: 403 forbidden_host / forbidden_origin, 413 too_large,
422 invalid_json (a WebSocket handshake gets the same as an HTTP denial response).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pressroom_contracts.protocol import MAX_JSON_DEPTH, json_too_deep

from .metrics import ERRORS

# Reached by probes and scrapers by address, never by a browser page that could read them usefully.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


def _refuse(status: int, code: str, message: str) -> JSONResponse:
    ERRORS.labels(code).inc()
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def host_name(host: str) -> str:
    """The name part of a Host header value ("[::1]:8000" -> "::1")."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_allowed(host: str, allowed: list[str]) -> bool:
    name = host_name(host)
    for pattern in allowed:
        if pattern == "*" or name == pattern or (pattern.startswith("*.") and name.endswith(pattern[1:])):
            return True
    return False


def _origin_key(scheme: str, netloc: str) -> tuple[str, str, int | None]:
    parts = urlsplit(f"{scheme}://{netloc}")
    secure = scheme in ("https", "wss")
    port = parts.port or DEFAULT_PORTS.get(scheme)
    return ("https" if secure else "http", (parts.hostname or "").lower(), port)


def same_origin(origin: str, scope: Scope, host: str) -> bool:
    parts = urlsplit(origin)
    if not parts.scheme or not parts.netloc:
        return False  # "null" (sandboxed frames, file:) or garbage
    return _origin_key(parts.scheme, parts.netloc) == _origin_key(scope.get("scheme", "http"), host)


class Guards:
    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_hosts: list[str],
        allowed_origins: list[str],
        max_body_bytes: int,
    ) -> None:
        self.app = app
        self.allowed_hosts = [h.lower() for h in allowed_hosts]
        self.allowed_origins = {o.rstrip("/").lower() for o in allowed_origins}
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not host_allowed(host, self.allowed_hosts):
            await _refuse(403, "forbidden_host", "this gateway does not answer to that Host")(
                scope, receive, send
            )
            return
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin, scope, host):
            await _refuse(403, "forbidden_origin", "requests from that Origin are not allowed")(
                scope, receive, send
            )
            return
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            await self._with_body(scope, receive, send, headers)
            return
        await self.app(scope, receive, send)

    def _origin_allowed(self, origin: str, scope: Scope, host: str) -> bool:
        return (
            "*" in self.allowed_origins
            or origin.rstrip("/").lower() in self.allowed_origins
            or same_origin(origin, scope, host)
        )

    async def _with_body(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                response = _refuse(
                    413, "too_large", f"request bodies are limited to {self.max_body_bytes} bytes"
                )
                await response(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if "json" in headers.get("content-type", "") and json_too_deep(body):
            response = _refuse(422, "invalid_json", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
            await response(scope, receive, send)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
