"""Builds the gateway: a FastAPI app whose lifespan owns the NATS connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from . import legacy, ws
from .bus import Bus
from .settings import GatewaySettings


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    bus = Bus(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await bus.connect()
        try:
            yield
        finally:
            await bus.close()

    app = FastAPI(title="Pressroom gateway", version="0.1.0", lifespan=lifespan)
    # For tests and later routers; request handlers get what they need through their router factory.
    app.state.settings = settings
    app.state.bus = bus

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        # Ready only while NATS is connected: during a reconnect nothing can be started or streamed.
        if bus.connected:
            return JSONResponse({"status": "ok", "nats": "connected"})
        return JSONResponse({"status": "unavailable", "nats": "disconnected"}, status_code=503)

    app.include_router(ws.build_router(bus, settings))
    app.include_router(legacy.build_router(bus, settings))
    return app


def server_config(app: FastAPI, settings: GatewaySettings) -> uvicorn.Config:
    """The uvicorn configuration the gateway runs with (shared by __main__ and the tests)."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_config=None,  # logging is configured by pressroom_runtime.logs
        access_log=False,
        ws_max_size=settings.ws_hard_limit,
    )
