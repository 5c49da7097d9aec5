"""Provisioning on a nats-server of the test's own: both streams, every durable on its stream, the buckets,
with the replica count and size bounds of the settings applied and reconciled."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from pressroom_contracts import subjects
from pressroom_contracts.topology import DURABLES, JOBS_BUCKET, KEY_VALUE_BUCKETS, STREAMS
from pressroom_devstack.nats import NatsServer
from pressroom_runtime.provisioning import provision, sized
from pressroom_runtime.settings import ServiceSettings, StreamBounds

MB = 1024 * 1024


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[str]:
    server = NatsServer(tmp_path / "nats", tmp_path / "nats.log")
    try:
        yield server.start()
    finally:
        server.stop()


async def test_streams_consumers_and_buckets_are_created_then_left_alone(own_nats):
    first = await provision(own_nats)
    assert set(first) == {c.durable for c in DURABLES} | {f"kv:{b.name}" for b in KEY_VALUE_BUCKETS}
    assert set(first.values()) == {"created"}
    again = await provision(own_nats)
    assert set(again.values()) == {"unchanged"}
    nc = await nats.connect(own_nats)
    try:
        js = nc.jetstream()
        for stream in STREAMS:
            config = (await js.stream_info(stream.name)).config
            assert (config.num_replicas, config.max_bytes, config.allow_direct) == (1, stream.max_bytes, True)
        for consumer in DURABLES:
            assert (
                await js.consumer_info(consumer.stream, consumer.durable)
            ).config.durable_name == consumer.durable
        dead = await js.stream_info(subjects.DEADLETTER_STREAM)
        assert subjects.max_deliveries_advisory() in (
            dead.config.subjects or []
        )  # the server's give-ups are kept
    finally:
        await nc.close()


async def test_bounds_and_replicas_come_from_the_settings_and_are_reconciled(own_nats):
    await provision(own_nats)
    bounded = StreamBounds(content_max_bytes=64 * MB, deadletter_max_bytes=8 * MB, kv_max_bytes=MB)
    result = await provision(own_nats, bounds=bounded)
    assert result[f"kv:{JOBS_BUCKET.name}"] == "updated"
    nc = await nats.connect(own_nats)
    try:
        js = nc.jetstream()
        assert (await js.stream_info(subjects.STREAM)).config.max_bytes == 64 * MB
        assert (await js.stream_info(subjects.DEADLETTER_STREAM)).config.max_bytes == 8 * MB
        assert (await js.stream_info(JOBS_BUCKET.stream)).config.max_bytes == MB
    finally:
        await nc.close()
    assert (await provision(own_nats, bounds=bounded))[f"kv:{JOBS_BUCKET.name}"] == "unchanged"


def test_a_cluster_gets_three_replicas_of_everything():
    streams, buckets = sized(replicas=3)
    assert {s.replicas for s in streams} == {b.replicas for b in buckets} == {3}
    assert {s.name for s in streams} == {s.name for s in STREAMS}


def test_replicas_and_bounds_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("PRESSROOM_STREAM_REPLICAS", "3")
    monkeypatch.setenv("PRESSROOM_STREAM_CONTENT_MAX_BYTES", str(10 * MB))
    assert (ServiceSettings().stream_replicas, StreamBounds().content_max_bytes) == (3, 10 * MB)
