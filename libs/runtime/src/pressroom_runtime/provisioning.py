"""Creates or reconciles the CONTENT stream, every durable consumer and the key-value buckets from
pressroom_contracts.topology.

Run once at start-up or deploy (`python -m pressroom_runtime.provisioning`). Services only bind.
A consumer whose configuration drifted is updated in place, or recreated when the server refuses the
update, because the server silently keeps an existing durable's old config otherwise.
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
    CONSUMERS,
    CONTENT_STREAM,
    KEY_VALUE_BUCKETS,
    STREAMS,
    ConsumerSpec,
    KeyValueSpec,
    StreamSpec,
)

from .broker import nats_servers
from .logs import configure_logging, get_logger

log = get_logger(__name__)


def stream_config(spec: StreamSpec, replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        num_replicas=replicas,
        name=spec.name,
        subjects=list(spec.subjects),
        retention=RetentionPolicy.LIMITS,
        storage=StorageType(spec.storage),
        max_age=spec.max_age_seconds,
        max_bytes=spec.max_bytes,
        duplicate_window=spec.duplicate_window_seconds,
        discard=DiscardPolicy.OLD,
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


async def ensure_stream(js: JetStreamContext, spec: StreamSpec, replicas: int = 1) -> None:
    config = stream_config(spec, replicas)
    try:
        await js.stream_info(spec.name)
    except NotFoundError:
        await js.add_stream(config)
        log.info("stream created", stream=spec.name)
        return
    await js.update_stream(config)
    log.info("stream reconciled", stream=spec.name)


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


async def ensure_key_value(js: JetStreamContext, spec: KeyValueSpec, replicas: int = 1) -> str:
    """Creates the bucket, or reconciles its history and description; never touches its keys.
    Returns what it did: created, unchanged or updated."""
    try:
        info = await js.stream_info(spec.stream)
    except NotFoundError:
        await js.create_key_value(
            KeyValueConfig(
                bucket=spec.name,
                description=spec.description,
                history=spec.history,
                storage=StorageType(spec.storage),
                replicas=replicas,
            )
        )
        log.info("key-value bucket created", bucket=spec.name)
        return "created"
    config = info.config
    if (config.max_msgs_per_subject, config.description, config.num_replicas) == (
        spec.history,
        spec.description,
        replicas,
    ):
        return "unchanged"
    config.max_msgs_per_subject = spec.history
    config.description = spec.description
    config.num_replicas = replicas
    await js.update_stream(config)
    log.info("key-value bucket reconciled", bucket=spec.name, history=spec.history)
    return "updated"


async def provision(
    nats_url: str, *, replicas: int = 1, user: str | None = None, password: SecretStr | None = None
) -> dict[str, str]:
    """What it did, by durable consumer name and by `kv:<bucket>`. `replicas`: copies of the stream and
    the buckets (3 on a cluster; the durables follow their stream). `user`: the NATS user allowed to
    create them (`admin` where the server requires users), else credentials in the URL or none."""
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
        for stream in STREAMS:
            await ensure_stream(js, stream, replicas)
        result = {spec.durable: await ensure_consumer(js, CONTENT_STREAM.name, spec) for spec in CONSUMERS}
        for bucket in KEY_VALUE_BUCKETS:
            result[f"kv:{bucket.name}"] = await ensure_key_value(js, bucket, replicas)
        return result
    finally:
        await nc.close()


async def check_bound(js: JetStreamContext, durable: str) -> None:
    """Fails fast with a clear message when provisioning has not run."""
    try:
        await js.consumer_info(CONTENT_STREAM.name, durable)
    except NotFoundError:
        raise RuntimeError(
            f"durable consumer {durable!r} on stream {CONTENT_STREAM.name} does not exist: "
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
            user=settings.nats_user,
            password=settings.nats_password,
        )
    )
    for durable, action in result.items():
        print(f"{durable}: {action}", file=sys.stderr)


if __name__ == "__main__":
    main()
