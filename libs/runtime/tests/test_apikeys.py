"""API keys in the JetStream key-value bucket, on a real nats-server; and the bucket's provisioning."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from pressroom_contracts.topology import KEY_BUCKET
from pressroom_devstack.nats import NatsServer
from pressroom_runtime.apikeys import (
    TOKEN_PREFIX,
    KeyStoreMissing,
    create_key,
    list_keys,
    lookup,
    revoke,
)
from pressroom_runtime.provisioning import provision


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    await provision(nats_url)
    conn = await nats.connect(nats_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[str]:
    """A nats-server of this test's own: its buckets can be dropped without touching other tests."""
    server = NatsServer(tmp_path / "nats", tmp_path / "nats.log")
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


async def test_a_created_key_authenticates_its_client_and_is_stored_only_hashed(nc):
    token, record = await create_key(nc, "  laptop  ")
    assert token.startswith(TOKEN_PREFIX) and len(token) > 40
    assert record.name == "laptop"
    assert await lookup(nc, token) == record

    kv = await nc.jetstream().key_value(KEY_BUCKET.name)
    stored = await kv.get(hashlib.sha256(token.encode()).hexdigest())
    assert token.encode() not in stored.value
    assert token.removeprefix(TOKEN_PREFIX).encode() not in stored.value

    # Each key is its own client.
    other_token, other = await create_key(nc, "laptop")
    assert other.client_id != record.client_id and other_token != token


async def test_unknown_and_malformed_tokens_authenticate_nobody(nc):
    token, _ = await create_key(nc, "ci")
    assert await lookup(nc, token + "x") is None
    assert await lookup(nc, TOKEN_PREFIX + "nope") is None
    assert await lookup(nc, "Bearer " + token) is None
    assert await lookup(nc, "") is None
    assert await lookup(nc, TOKEN_PREFIX + "x" * 10_000) is None


async def test_list_and_revoke(nc):
    first_token, first = await create_key(nc, "first")
    second_token, second = await create_key(nc, "second")
    listed = await list_keys(nc)
    ids = [r.client_id for r in listed]
    assert first.client_id in ids and second.client_id in ids
    assert ids.index(first.client_id) < ids.index(second.client_id)  # oldest first

    assert await revoke(nc, first.client_id) is True
    assert await lookup(nc, first_token) is None
    assert await lookup(nc, second_token) == second
    assert first.client_id not in [r.client_id for r in await list_keys(nc)]
    assert await revoke(nc, first.client_id) is False
    assert await revoke(nc, "client-never-existed") is False


async def test_without_provisioning_the_key_store_says_so(own_nats):
    conn = await nats.connect(own_nats)
    try:
        with pytest.raises(KeyStoreMissing, match="provisioning"):
            await create_key(conn, "too early")
        with pytest.raises(KeyStoreMissing):
            await lookup(conn, TOKEN_PREFIX + "abc")
    finally:
        await conn.close()


async def test_provisioning_creates_the_bucket_once_and_reconciles_it(own_nats):
    first = await provision(own_nats)
    assert first[f"kv:{KEY_BUCKET.name}"] == "created"
    conn = await nats.connect(own_nats)
    try:
        token, record = await create_key(conn, "kept")
        assert (await provision(own_nats))[f"kv:{KEY_BUCKET.name}"] == "unchanged"

        # Someone changed the bucket's history: provisioning puts it back and keeps the keys.
        js = conn.jetstream()
        info = await js.stream_info(KEY_BUCKET.stream)
        info.config.max_msgs_per_subject = 5
        await js.update_stream(info.config)
        assert (await provision(own_nats))[f"kv:{KEY_BUCKET.name}"] == "updated"
        assert (await js.stream_info(KEY_BUCKET.stream)).config.max_msgs_per_subject == KEY_BUCKET.history
        assert await lookup(conn, token) == record
        assert await list_keys(conn) == [record]
    finally:
        await conn.close()
