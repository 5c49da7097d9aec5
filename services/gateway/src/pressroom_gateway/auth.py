"""Who is calling: bearer tokens on REST, SSE and WebSocket.

Two kinds of token are accepted:
- API keys (`prk_…`), looked up in the NATS key-value bucket (pressroom_runtime.apikeys). Lookups are
  cached for `auth_cache_seconds` (a revoked key keeps working at most that long); unknown tokens for a
  few seconds, so guessing cannot hammer the bucket.
- HS256 JWTs when PRESSROOM_GATEWAY_JWT_SECRET is set: `sub` is the client id, `exp` is required.

REST handlers depend on `current_client` (401 with {"error": {"code": "unauthenticated", …}});
WebSocket and SSE endpoints call `authenticate_token` with the token found by `request_token`.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt
from fastapi import Request
from starlette.requests import HTTPConnection

from pressroom_runtime import apikeys
from pressroom_runtime.logs import get_logger

from .bus import ANONYMOUS_ID, BUS_ERRORS, Bus
from .settings import GatewaySettings

log = get_logger(__name__)

# Unknown tokens are remembered briefly: long enough to absorb a retry loop, short enough that a key
# created a moment after a failed attempt works almost at once.
NEGATIVE_CACHE_SECONDS = 5.0
CACHE_SIZE = 10_000
MAX_TOKEN_LENGTH = 8192
JWT_ALGORITHMS = ["HS256"]
KEY_STORE_ERRORS: tuple[type[BaseException], ...] = (*BUS_ERRORS, apikeys.KeyStoreMissing)


@dataclass(frozen=True)
class Client:
    """An authenticated caller. `id` owns the jobs it starts."""

    id: str
    name: str


ANONYMOUS = Client(id=ANONYMOUS_ID, name="anonymous")


class GatewayError(Exception):
    """A refusal answered as {"error": {"code", "message"}} with `status` over HTTP, or as an `error`
    frame over WebSocket."""

    status = 400
    code = "invalid_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def headers(self) -> dict[str, str]:
        return {}


class Unauthenticated(GatewayError):
    status = 401
    code = "unauthenticated"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="pressroom"'}


class Unavailable(GatewayError):
    status = 503
    code = "unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}


class Authenticator:
    """Resolves tokens to clients for one gateway: `bus.part(Authenticator)`."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.settings: GatewaySettings = bus.settings
        self._cache: OrderedDict[str, tuple[float, Client | None]] = OrderedDict()

    async def authenticate(self, token: str) -> Client | None:
        """The client `token` authenticates, or None. `Unavailable` when the key store cannot be read:
        a token we cannot check is neither valid nor invalid."""
        token = token.strip()
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        if token.startswith(apikeys.TOKEN_PREFIX):
            try:
                return await self._api_key(token)
            except KEY_STORE_ERRORS as exc:
                log.warning("could not check an api key", error=repr(exc))
                raise Unavailable("cannot check the token now; try again") from None
        if self.settings.jwt_secret is not None:
            return self._jwt(token)
        return None

    async def _api_key(self, token: str) -> Client | None:
        key = hashlib.sha256(token.encode()).hexdigest()  # never keep the token itself
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        record = await apikeys.lookup(self.bus.nc, token)
        client = Client(id=record.client_id, name=record.name) if record else None
        ttl = self.settings.auth_cache_seconds
        self._remember(key, now + (ttl if client else min(ttl, NEGATIVE_CACHE_SECONDS)), client)
        return client

    def _remember(self, key: str, until: float, client: Client | None) -> None:
        self._cache[key] = (until, client)
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    def _jwt(self, token: str) -> Client | None:
        assert self.settings.jwt_secret is not None
        try:
            claims = jwt.decode(
                token,
                self.settings.jwt_secret.get_secret_value(),
                algorithms=JWT_ALGORITHMS,
                options={"require": ["exp", "sub"]},
            )
        except jwt.PyJWTError as exc:
            log.info("jwt refused", reason=str(exc))
            return None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            return None
        name = claims.get("name")
        return Client(id=subject, name=name if isinstance(name, str) and name else subject)

    def forget(self) -> None:
        """Drops every cached lookup (after revoking a key, in tests)."""
        self._cache.clear()


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def request_token(connection: HTTPConnection) -> str | None:
    """The token a request or WebSocket handshake carries: `Authorization: Bearer …`, else `?token=`
    (browsers cannot set headers on a WebSocket or an EventSource)."""
    return bearer(connection.headers.get("authorization")) or connection.query_params.get("token") or None


def _authenticator(source: Any) -> Authenticator:
    if isinstance(source, Authenticator):
        return source
    if isinstance(source, Bus):
        return source.part(Authenticator)
    bus = getattr(source, "bus", None)  # app.state
    if bus is None and hasattr(source, "app"):  # a Request or WebSocket
        bus = source.app.state.bus
    if not isinstance(bus, Bus):
        raise TypeError(f"cannot find the gateway's bus in {source!r}")
    return bus.part(Authenticator)


async def authenticate_token(app_state_or_bus: Any, token: str | None) -> Client | None:
    """The client `token` authenticates, or None. Accepts the app's state, the Bus, or a Request or
    WebSocket. Raises `Unavailable` when the key store cannot be read."""
    if not token:
        return None
    return await _authenticator(app_state_or_bus).authenticate(token)


async def current_client(request: Request) -> Client:
    """FastAPI dependency: the authenticated caller, else 401 `unauthenticated` (503 `unavailable` when
    the key store cannot be reached)."""
    token = request_token(request)
    if token is None:
        raise Unauthenticated("a bearer token is required: Authorization: Bearer <api key or jwt>")
    client = await authenticate_token(request, token)
    if client is None:
        raise Unauthenticated("the token is not valid (unknown, revoked or expired)")
    return client
