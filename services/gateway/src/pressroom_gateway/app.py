"""Builds the gateway: a FastAPI app whose lifespan owns the NATS connection.

Endpoints: /v1/ws (ws.py), /content (legacy.py), the REST API (rest.py), SSE (sse.py), the web page
(page.py), GET /healthz (NATS connected), GET /readyz (and the stream and key bucket exist) and
GET /metrics (Prometheus text format).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from pressroom_runtime.observability import metrics_app

from . import legacy, ws
from .auth import GatewayError
from .bus import Bus, enter_bus, leave_bus
from .metrics import ERRORS
from .page import router as page_router
from .profile_routes import router as profiles_router
from .rest import router as rest_router
from .settings import GatewaySettings
from .sse import router as sse_router


class BusContext:
    """ASGI middleware: makes the app's bus `current_bus()` while a request is served, so helpers such as
    `check_job_quota(client)` and `moderate(request)` act for this gateway and no other."""

    def __init__(self, app: ASGIApp, bus: Bus) -> None:
        self.app = app
        self.bus = bus

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = enter_bus(self.bus)
        try:
            await self.app(scope, receive, send)
        finally:
            leave_bus(token)


class _AsgiEndpoint:
    """Wraps an ASGI callable so Starlette's Route hands it the scope as is (it wraps plain functions as
    request/response endpoints): GET /metrics answers without a redirect to /metrics/."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def error_response(error: GatewayError) -> JSONResponse:
    ERRORS.labels(error.code).inc()
    return JSONResponse(
        {"error": {"code": error.code, "message": error.message}},
        status_code=error.status,
        headers=error.headers(),
    )


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
    # For tests and the routers: handlers find the bus (and through it every per-gateway part) here.
    app.state.settings = settings
    app.state.bus = bus
    app.add_middleware(BusContext, bus=bus)

    @app.exception_handler(GatewayError)
    async def on_gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        return error_response(exc)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> JSONResponse:
        """Live while NATS is connected: during a reconnect nothing can be started or streamed."""
        if bus.connected:
            return JSONResponse({"status": "ok", "nats": "connected"})
        return JSONResponse({"status": "unavailable", "nats": "disconnected"}, status_code=503)

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """Ready when NATS is connected and provisioning created the CONTENT stream and the key bucket."""
        checks = await bus.readiness()
        ready = checks.get("nats") == "connected" and all(
            checks.get(name) == "ok" for name in ("stream", "key_bucket")
        )
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", **checks}, status_code=200 if ready else 503
        )

    app.router.routes.append(
        Route("/metrics", _AsgiEndpoint(metrics_app()), methods=["GET"], include_in_schema=False)
    )
    app.include_router(ws.build_router(bus, settings))
    app.include_router(legacy.build_router(bus, settings))
    app.include_router(rest_router)
    app.include_router(profiles_router)
    app.include_router(sse_router)
    app.include_router(page_router)
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
