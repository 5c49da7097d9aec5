"""Creates or reconciles the streams (CONTENT, LIVE, DEADLETTER), every durable consumer and the key-value
buckets from pressroom_contracts.topology, with the replica count and size bounds of the settings
(PRESSROOM_STREAM_REPLICAS — 1, or 3 on a cluster —, PRESSROOM_STREAM_*_MAX_BYTES) applied on top.

Run once at start-up or deploy (`python -m pressroom_runtime.provisioning`). Services only bind.
A stream or bucket whose replicas or bounds changed is updated in place (the server moves a stream
between 1 and 3 replicas online). A consumer whose configuration drifted is updated in place, or
recreated when the server refuses the update, because the server silently keeps an existing durable's
old config otherwise. Consumers inherit their stream's replica count.
"""

from __future__ import annotations

import asyncio
import sys

import nats
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.client import JetStreamContext
from nats.js.errors import BadRequestError, NotFoundError
from pydantic import SecretStr

from pressroom_contracts.topology import (
    CONTENT_STREAM,
    DEADLETTER_STREAM,
    DURABLES,
    KEY_VALUE_BUCKETS,
    STREAMS,
    ConsumerSpec,
    KeyValueSpec,
    StreamSpec,
)

from .broker import nats_servers
from .logs import configure_logging, get_logger
from .settings import StreamBounds

log = get_logger(__name__)


def sized(
    replicas: int = 1, bounds: StreamBounds | None = None
) -> tuple[tuple[StreamSpec, ...], tuple[KeyValueSpec, ...]]:
    """The topology's streams and buckets with `replicas` copies each and the size bounds of `bounds`."""
    bounds = bounds or StreamBounds()
    max_bytes = {
        CONTENT_STREAM.name: bounds.content_max_bytes,
        DEADLETTER_STREAM.name: bounds.deadletter_max_bytes,
    }
    streams = tuple(
        s.model_copy(update={"replicas": replicas, "max_bytes": max_bytes.get(s.name, s.max_bytes)})
        for s in STREAMS
    )
    buckets = tuple(
        b.model_copy(update={"replicas": replicas, "max_bytes": bounds.kv_max_bytes})
        for b in KEY_VALUE_BUCKETS
    )
    return streams, buckets


def stream_config(spec: StreamSpec) -> StreamConfig:
    return StreamConfig(
        name=spec.name,
        description=spec.description or None,
        subjects=list(spec.subjects),
        retention=RetentionPolicy.LIMITS,
        storage=StorageType(spec.storage),
        max_age=spec.max_age_seconds,
        max_bytes=spec.max_bytes,
        duplicate_window=spec.duplicate_window_seconds,
        discard=DiscardPolicy.OLD,
        num_replicas=spec.replicas,
        allow_direct=True,  # reads by subject (history.py) answered by any replica, no consumer needed
    )


def consumer_config(spec: ConsumerSpec) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=spec.durable,
        description=spec.description,
        filter_subjects=list(spec.filter_subjects),
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=spec.ack_wait_seconds,
        max_deliver=spec.max_deliver,
        max_ack_pending=spec.max_ack_pending,
    )


def _drifted(current: ConsumerConfig, wanted: ConsumerConfig) -> list[str]:
    fields = ("ack_wait", "max_deliver", "max_ack_pending", "description")
    drift = [f for f in fields if getattr(current, f) != getattr(wanted, f)]
    # The server reports a single filter in filter_subject, several in filter_subjects.
    current_filters = list(
        current.filter_subjects or ([current.filter_subject] if current.filter_subject else [])
    )
    if current_filters != list(wanted.filter_subjects or []):
        drift.append("filter_subjects")
    return drift


async def ensure_stream(js: JetStreamContext, spec: StreamSpec) -> None:
    config = stream_config(spec)
    try:
        await js.stream_info(spec.name)
    except NotFoundError:
        await js.add_stream(config)
        log.info("stream created", stream=spec.name, replicas=spec.replicas)
        return
    await js.update_stream(config)
    log.info("stream reconciled", stream=spec.name, replicas=spec.replicas)


async def ensure_consumer(js: JetStreamContext, stream: str, spec: ConsumerSpec) -> str:
    """Returns what it did: created, unchanged, updated or recreated."""
    wanted = consumer_config(spec)
    try:
        info = await js.consumer_info(stream, spec.durable)
    except NotFoundError:
        await js.add_consumer(stream, wanted)
        log.info("consumer created", consumer=spec.durable)
        return "created"
    drift = _drifted(info.config, wanted)
    if not drift:
        return "unchanged"
    try:
        await js.add_consumer(stream, wanted)  # the server treats this as an update
        refreshed = await js.consumer_info(stream, spec.durable)
        if not _drifted(refreshed.config, wanted):
            log.info("consumer updated", consumer=spec.durable, fields=drift)
            return "updated"
    except BadRequestError as exc:
        log.warning("consumer update refused", consumer=spec.durable, error=str(exc))
    # Recreating loses the consumer's position; acceptable only because redelivery is idempotent.
    await js.delete_consumer(stream, spec.durable)
    await js.add_consumer(stream, wanted)
    log.warning("consumer recreated", consumer=spec.durable, fields=drift)
    return "recreated"


async def ensure_key_value(js: JetStreamContext, spec: KeyValueSpec) -> str:
    """Creates the bucket, or reconciles its history, entry lifetime, description, replicas and bound;
    never touches its keys. Returns what it did: created, unchanged or updated."""
    try:
        info = await js.stream_info(spec.stream)
    except NotFoundError:
        await js.create_key_value(
            KeyValueConfig(
                bucket=spec.name,
                description=spec.description,
                history=spec.history,
                ttl=spec.ttl_seconds or None,
                storage=StorageType(spec.storage),
                replicas=spec.replicas,
                max_bytes=spec.max_bytes,
                direct=True,
            )
        )
        log.info("key-value bucket created", bucket=spec.name)
        return "created"
    config = info.config
    wanted = {
        "max_msgs_per_subject": spec.history,
        "description": spec.description,
        "num_replicas": spec.replicas,
        "max_bytes": spec.max_bytes,
        "allow_direct": True,
        "max_age": float(spec.ttl_seconds),
    }
    config.max_age = config.max_age or 0.0  # absent when the bucket's entries never expire
    drift = [name for name, value in wanted.items() if getattr(config, name) != value]
    if not drift:
        return "unchanged"
    for name, value in wanted.items():
        setattr(config, name, value)
    await js.update_stream(config)
    log.info("key-value bucket reconciled", bucket=spec.name, fields=drift)
    return "updated"


async def provision(
    nats_url: str,
    *,
    replicas: int = 1,
    bounds: StreamBounds | None = None,
    user: str | None = None,
    password: SecretStr | None = None,
) -> dict[str, str]:
    """What it did, by durable consumer name and by `kv:<bucket>`. `replicas`: copies of every stream and
    bucket (3 on a cluster; the durables follow their stream); `bounds`: their size limits. `user`: the
    NATS user allowed to create them (`admin` where the server requires users), else credentials in the
    URL or none."""
    streams, buckets = sized(replicas, bounds)
    # A one-shot step: fail within seconds when NATS is unreachable instead of reconnecting for minutes.
    nc = await nats.connect(
        nats_servers(nats_url),
        user=user,
        password=password.get_secret_value() if password else None,
        connect_timeout=5,
        max_reconnect_attempts=3,
        reconnect_time_wait=1,
    )
    try:
        js = nc.jetstream()
        for stream in streams:
            await ensure_stream(js, stream)
        result = {spec.durable: await ensure_consumer(js, spec.stream, spec) for spec in DURABLES}
        for bucket in buckets:
            result[f"kv:{bucket.name}"] = await ensure_key_value(js, bucket)
        return result
    finally:
        await nc.close()


async def check_bound(js: JetStreamContext, durable: str, stream: str = CONTENT_STREAM.name) -> None:
    """Fails fast with a clear message when provisioning has not run."""
    try:
        await js.consumer_info(stream, durable)
    except NotFoundError:
        raise RuntimeError(
            f"durable consumer {durable!r} on stream {stream} does not exist: "
            "run the provisioning step (python -m pressroom_runtime.provisioning) first"
        ) from None


def main() -> None:
    from .settings import ServiceSettings

    settings = ServiceSettings()
    configure_logging(settings.log_level, settings.log_format, service="provisioning")
    result = asyncio.run(
        provision(
            settings.nats_url,
            replicas=settings.stream_replicas,
            bounds=StreamBounds(),
            user=settings.nats_user,
            password=settings.nats_password,
        )
    )
    for durable, action in result.items():
        print(f"{durable}: {action}", file=sys.stderr)


if __name__ == "__main__":
    main()
