"""Runs a service process: its broker, a /healthz endpoint, and a graceful shutdown on SIGTERM."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import uvicorn
from faststream.asgi import AsgiFastStream, make_ping_asgi
from faststream.nats import NatsBroker

from pressroom_contracts.events import Envelope, Producer, Stage
from pressroom_contracts.topology import ConsumerSpec

from . import gcpolicy
from .broker import Publisher, make_broker
from .consumer import Delivery, bind_consumer
from .logs import configure_logging
from .observability import metrics_app
from .provisioning import check_bound
from .settings import ServiceSettings
from .stage import Handler


def build_asgi(
    broker: NatsBroker,
    *,
    on_startup: Sequence[Callable[..., Any]] = (),
    after_startup: Sequence[Callable[..., Any]] = (),
    on_shutdown: Sequence[Callable[..., Any]] = (),
) -> AsgiFastStream:
    return AsgiFastStream(
        broker,
        asgi_routes=[("/healthz", make_ping_asgi(broker, timeout=5.0)), ("/metrics", metrics_app())],
        on_startup=on_startup,
        after_startup=after_startup,
        on_shutdown=on_shutdown,
    )


def serve(app: Any, settings: ServiceSettings, service: str) -> None:
    """Blocks until SIGINT/SIGTERM; in-flight messages finish within PRESSROOM_DRAIN_SECONDS."""
    configure_logging(settings.log_level, settings.log_format, service=service, replica=settings.replica)
    gcpolicy.tune()
    uvicorn.run(
        app,
        host=settings.health_host,
        port=settings.health_port or 0,
        log_config=None,
        access_log=False,
        lifespan="on",
    )


def stage_app(
    *,
    service: str,
    settings: ServiceSettings,
    consumer: ConsumerSpec,
    accepts: tuple[type[Envelope], ...],
    stage: Stage | None,
    handler: Handler,
    on_startup: Sequence[Callable[..., Any]] = (),
    on_shutdown: Sequence[Callable[..., Any]] = (),
) -> tuple[AsgiFastStream, NatsBroker]:
    """A service that consumes one durable: broker, publisher, binding, health endpoint. It takes
    `settings.concurrency` messages at once (PRESSROOM_<SERVICE>_CONCURRENCY)."""
    broker = make_broker(
        settings.nats_url,
        name=f"{service}:{settings.replica}",
        user=settings.nats_user,
        password=settings.nats_password,
    )
    publisher = Publisher(broker, timeout=settings.publish_timeout, service=service)
    producer = Producer(service=service, replica=settings.replica)
    bound = bind_consumer(
        broker,
        consumer=consumer,
        accepts=accepts,
        handler=handler,
        publisher=publisher,
        producer=producer,
        stage=stage,
        delivery=Delivery.of(settings),
    )

    async def require_provisioned() -> None:
        # Bind to what provisioning declared; never let the client library create a default consumer.
        connection = await broker.connect()
        await check_bound(connection.jetstream(), consumer.durable)

    # Messages are taken once the broker is connected; on SIGTERM no new one is, and those in flight finish
    # (within PRESSROOM_DRAIN_SECONDS) before the broker closes.
    app = build_asgi(
        broker,
        on_startup=[require_provisioned, *on_startup],
        after_startup=[bound.start],
        on_shutdown=[bound.stop, *on_shutdown],
    )
    return app, broker
