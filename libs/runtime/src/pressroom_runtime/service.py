"""Runs a service process: its broker, a /healthz endpoint, and a graceful shutdown on SIGTERM."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import uvicorn
from faststream.asgi import AsgiFastStream, make_ping_asgi
from faststream.nats import NatsBroker

from .logging import configure_logging
from .settings import ServiceSettings


def build_asgi(broker: NatsBroker, *, on_startup: Sequence[Callable[..., Any]] = (),
               after_startup: Sequence[Callable[..., Any]] = (),
               on_shutdown: Sequence[Callable[..., Any]] = ()) -> AsgiFastStream:
    return AsgiFastStream(
        broker,
        asgi_routes=[("/healthz", make_ping_asgi(broker, timeout=5.0))],
        on_startup=on_startup,
        after_startup=after_startup,
        on_shutdown=on_shutdown,
    )


def serve(app: Any, settings: ServiceSettings, service: str) -> None:
    """Blocks until SIGINT/SIGTERM; in-flight messages finish within the broker's graceful timeout."""
    configure_logging(settings.log_level, settings.log_format, service=service, replica=settings.replica)
    uvicorn.run(
        app,
        host=settings.health_host,
        port=settings.health_port or 0,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
