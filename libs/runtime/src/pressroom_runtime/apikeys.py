"""API keys of gateway clients, kept in the JetStream key-value bucket `pressroom-api-keys`.

A key is the token `prk_<random>`, shown once when it is created. The bucket stores only its SHA-256
(hex) as the key and the client's record as the value, so reading the bucket reveals no usable token.
One record per token; revoking a client deletes every token that authenticates it.

The bucket is created by the provisioning step (pressroom_contracts.topology.KEY_BUCKET); these
functions bind to it and raise `KeyStoreMissing` when it does not exist.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from nats.aio.client import Client as NatsClient
from nats.js.errors import BucketNotFoundError, KeyNotFoundError
from nats.js.kv import KeyValue
from pydantic import BaseModel, Field, ValidationError

from pressroom_contracts.topology import KEY_BUCKET

from .logs import get_logger

log = get_logger(__name__)

TOKEN_PREFIX = "prk_"
# Longer than any token we issue: anything bigger is not worth hashing.
MAX_TOKEN_LENGTH = 256


class KeyStoreMissing(RuntimeError):
    """The key-value bucket does not exist: the provisioning step has not run."""


class ClientRecord(BaseModel):
    client_id: str = Field(description="Owner of the client's jobs.")
    name: str = Field(description="What the key is for, as given when it was created.")
    created_at: datetime


def token_hash(token: str) -> str:
    """The bucket key of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_key(token: str) -> bool:
    return token.startswith(TOKEN_PREFIX) and len(token) <= MAX_TOKEN_LENGTH


async def _bucket(nc: NatsClient) -> KeyValue:
    try:
        return await nc.jetstream().key_value(KEY_BUCKET.name)
    except BucketNotFoundError:
        raise KeyStoreMissing(
            f"key-value bucket {KEY_BUCKET.name!r} does not exist: "
            "run the provisioning step (python -m pressroom_runtime.provisioning) first"
        ) from None


def _new_client_id() -> str:
    return f"client-{secrets.token_hex(8)}"


async def create_key(nc: NatsClient, name: str) -> tuple[str, ClientRecord]:
    """A new client and its token. The token is returned once and never stored."""
    name = name.strip()
    if not name:
        raise ValueError("a key needs a name saying what it is for")
    kv = await _bucket(nc)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ClientRecord(client_id=_new_client_id(), name=name, created_at=datetime.now(UTC))
    # create(), not put(): a (practically impossible) hash collision must not replace another client.
    await kv.create(token_hash(token), record.model_dump_json().encode())
    log.info("api key created", client_id=record.client_id, name=name)
    return token, record


async def lookup(nc: NatsClient, token: str) -> ClientRecord | None:
    """The client a token authenticates, or None (unknown, revoked or not an API key)."""
    if not looks_like_key(token):
        return None
    kv = await _bucket(nc)
    try:
        entry = await kv.get(token_hash(token))
    except KeyNotFoundError:  # includes deleted keys
        return None
    return _record(entry.value)


async def list_keys(nc: NatsClient) -> list[ClientRecord]:
    """Every live key's record, oldest first."""
    return [record for _, record in await _entries(nc, await _bucket(nc))]


async def revoke(nc: NatsClient, client_id: str) -> bool:
    """Deletes every token of `client_id`; False when it had none."""
    kv = await _bucket(nc)
    found = False
    for key, record in await _entries(nc, kv):
        if record.client_id == client_id:
            await kv.purge(key)  # no history left behind
            found = True
    if found:
        log.info("api key revoked", client_id=client_id)
    return found


async def _entries(nc: NatsClient, kv: KeyValue) -> list[tuple[str, ClientRecord]]:
    # The stream's own per-subject state, not nats.py's kv.keys(): that one is a watcher that can
    # report "no keys" for a key written a moment before (seen in CI right after a create).
    prefix = f"$KV.{KEY_BUCKET.name}."
    info = await nc.jetstream().stream_info(KEY_BUCKET.stream, subjects_filter=f"{prefix}>")
    entries = []
    for subject in info.state.subjects or {}:
        key = subject.removeprefix(prefix)
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:  # revoked: only the delete marker is left
            continue
        record = _record(entry.value)
        if record is not None:
            entries.append((key, record))
    entries.sort(key=lambda item: item[1].created_at)
    return entries


def _record(value: bytes | None) -> ClientRecord | None:
    try:
        return ClientRecord.model_validate_json(value or b"")
    except ValidationError:
        log.warning("skipping an unreadable api key record")
        return None
