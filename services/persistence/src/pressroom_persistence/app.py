"""Builds the persistence service: migrations, then the pool, then the broker; the reverse on the way out."""

from __future__ import annotations

from faststream.asgi import AsgiFastStream
from faststream.nats import NatsBroker

from pressroom_contracts import topology
from pressroom_contracts.events import Producer
from pressroom_runtime.broker import Publisher, make_broker
from pressroom_runtime.consumer import Delivery
from pressroom_runtime.logs import get_logger
from pressroom_runtime.provisioning import check_bound
from pressroom_runtime.service import build_asgi

from . import migrate
from .handlers import register
from .settings import PersistenceSettings
from .store import Store

SERVICE = "persistence"
log = get_logger(__name__)


def create_app(
    settings: PersistenceSettings, *, broker: NatsBroker | None = None, store: Store | None = None
) -> AsgiFastStream:
    broker = broker or make_broker(
        settings.nats_url,
        name=f"{SERVICE}:{settings.replica}",
        user=settings.nats_user,
        password=settings.nats_password,
    )
    store = store or Store(
        settings.database_url, min_size=settings.pool_min_size, max_size=settings.pool_max_size
    )
    persistence = register(
        broker,
        store=store,
        publisher=Publisher(broker, timeout=settings.publish_timeout, service=SERVICE),
        producer=Producer(service=SERVICE, replica=settings.replica),
        delivery=Delivery.of(settings),
        query_workers=settings.query_workers,
        default_budget_usd=settings.default_budget_usd,
        stale_after=settings.stale_after_seconds,
        sweep_interval=settings.sweep_interval_seconds,
    )

    async def start_store() -> None:
        # Before the broker starts: no message is handled against an old schema or without a pool.
        if settings.migrate_on_start:
            await migrate.upgrade(settings.database_url)
            log.info("schema at head")
        await store.open()

    async def require_provisioned() -> None:
        # Bind to the durables provisioning declared; fail with a clear message when one is missing.
        js = (await broker.connect()).jetstream()
        for consumer in (topology.PERSISTENCE, topology.DEADLETTER):
            await check_bound(js, consumer.durable, consumer.stream)

    async def close_store() -> None:
        await store.close()

    # Events are taken once the broker is connected; on SIGTERM none is any more, and those in flight
    # finish before the broker closes.
    app = build_asgi(
        broker,
        on_startup=[start_store, require_provisioned],
        after_startup=[persistence.start],
        on_shutdown=[persistence.stop],
    )
    # After the broker stopped (in-flight messages finished), not on_shutdown, which runs before it.
    app.after_shutdown(close_store)
    return app
