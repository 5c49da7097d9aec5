"""Who is calling: bearer tokens on REST, SSE and WebSocket.

Two kinds of token are accepted:
- API keys (`prk_…`), looked up in the NATS key-value bucket (pressroom_runtime.apikeys). Lookups are
  cached for `auth_cache_seconds` (a revoked key keeps working at most that long); unknown tokens for a
  few seconds, so guessing cannot hammer the bucket.
- HS256 JWTs when PRESSROOM_GATEWAY_JWT_SECRET is set: `sub` is the client id, `exp` is required.

The app builds one Authenticator; REST and SSE reach it through the `current_client` dependency
(deps.py), WebSocket endpoints call it with the token `request_token` finds in the handshake.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass

import jwt
from starlette.requests import HTTPConnection

from pressroom_runtime import apikeys
from pressroom_runtime.logs import get_logger

from .bus import BUS_ERRORS, Bus
from .errors import Unavailable
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


# Owner of jobs started before clients authenticated (JobRequested.owner is None), and the client
# /content runs as when anonymous legacy clients are allowed.
ANONYMOUS_ID = "anonymous"
ANONYMOUS = Client(id=ANONYMOUS_ID, name="anonymous")


class Authenticator:
    """Resolves tokens to clients for one gateway."""

    def __init__(self, settings: GatewaySettings, bus: Bus) -> None:
        self.bus = bus
        self.settings = settings
        self._cache: OrderedDict[str, tuple[float, Client | None]] = OrderedDict()

    async def authenticate(self, token: str | None) -> Client | None:
        """The client `token` authenticates, or None. `Unavailable` when the key store cannot be read:
        a token we cannot check is neither valid nor invalid."""
        token = (token or "").strip()
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
