"""Who is calling: bearer tokens on REST, SSE and WebSocket.

Two kinds of token are accepted:
- API keys (`prk_…`), looked up in the NATS key-value bucket (pressroom_runtime.apikeys). Lookups are
  cached for `auth_cache_seconds` (concurrent lookups of one token share one read); unknown tokens for a
  few seconds, so guessing cannot hammer the bucket. Revocation is immediate: every gateway watches the
  bucket, forgets a deleted key at once and closes the WebSockets and event streams it authenticated.
- HS256 JWTs when PRESSROOM_GATEWAY_JWT_SECRET is set: `sub` is the client id, `exp` is required.

The app builds one Authenticator; REST and SSE reach it through the `current_client` dependency
(deps.py), WebSocket endpoints call it with the token `request_token` finds in the handshake.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import jwt
from nats.js.kv import KV_DEL, KV_PURGE
from starlette.requests import HTTPConnection

from pressroom_contracts.topology import KEY_BUCKET
from pressroom_runtime import apikeys
from pressroom_runtime.logs import get_logger
from pressroom_runtime.loops import cancel_requested

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
    key: str | None = None  # the bucket key (sha256) of the API key it came with: what a revocation names


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
        self._lookups: dict[str, asyncio.Future[Client | None]] = {}
        self._sessions: dict[str, set[Callable[[], object]]] = {}

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
        key = apikeys.token_hash(token)  # never keep the token itself
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        pending = self._lookups.get(key)
        if pending is not None:  # a connection storm with one key reads the bucket once
            return await asyncio.shield(pending)
        pending = self._lookups[key] = asyncio.get_running_loop().create_future()
        try:
            record = await apikeys.lookup(self.bus.nc, token)
            client = Client(id=record.client_id, name=record.name, key=key) if record else None
            ttl = self.settings.auth_cache_seconds
            until = time.monotonic() + (ttl if client else min(ttl, NEGATIVE_CACHE_SECONDS))
            self._remember(key, until, client)
            pending.set_result(client)
            return client
        except BaseException as exc:
            pending.set_exception(exc)
            pending.exception()  # retrieved: fine when nobody else was waiting
            raise
        finally:
            del self._lookups[key]

    # ---- revocation ---------------------------------------------------------------------------------

    def on_revoke(self, client: Client, callback: Callable[[], object]) -> Callable[[], None]:
        """Calls `callback` when the API key `client` authenticated with is revoked; returns the function
        that cancels this (call it when the connection ends)."""
        if client.key is None:  # a JWT: it expires instead
            return lambda: None
        callbacks = self._sessions.setdefault(client.key, set())
        callbacks.add(callback)
        return lambda: callbacks.discard(callback)

    def revoked(self, key: str) -> None:
        """The bucket no longer holds `key`: forget it and end what it authenticated."""
        self._cache.pop(key, None)
        callbacks = self._sessions.pop(key, set())
        if callbacks:
            log.info("api key revoked: closing its connections", connections=len(callbacks))
        for callback in callbacks:
            callback()

    async def watch_revocations(self) -> None:
        """For the gateway's life: follows the key bucket (one ordered consumer) and applies every
        deletion at once, on every replica; re-binds after an error."""
        while not cancel_requested():
            try:
                kv = await self.bus.js.key_value(KEY_BUCKET.name)
                watcher = await kv.watchall(meta_only=True)
                async for entry in watcher:
                    if entry is not None and entry.operation in (KV_DEL, KV_PURGE):
                        self.revoked(entry.key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("watching the key bucket failed; retrying", error=repr(exc))
            await asyncio.sleep(1.0)

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
