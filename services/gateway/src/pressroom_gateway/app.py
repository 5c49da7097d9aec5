"""Builds the gateway: a FastAPI app whose lifespan owns the NATS connection.

Endpoints: /v1/ws (ws.py), /content (legacy.py), the REST API (rest.py), SSE (sse.py), the web page
(page.py), the documentation (/docs, /redoc, /asyncapi: apidocs.py), GET /healthz (NATS connected),
GET /readyz (and the CONTENT stream and the key, jobs and idempotency buckets exist) and GET /metrics (Prometheus text format).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from pressroom_contracts.protocol import describe_errors
from pressroom_runtime.logs import get_logger
from pressroom_runtime.observability import metrics_app, tracer_provider

from . import apidocs, legacy, ws
from .bus import BUS_ERRORS, SERVICE
from .deps import Services, current_client
from .errors import UNAVAILABLE_MESSAGE, GatewayError, Unavailable
from .guards import Guards
from .metrics import ERRORS
from .page import router as page_router
from .presign import StorageSettings
from .profile_routes import router as profiles_router
from .rest import router as rest_router
from .settings import GatewaySettings
from .sse import router as sse_router

log = get_logger(__name__)


class _AsgiEndpoint:
    """Wraps an ASGI callable so Starlette's Route hands it the scope as is (it wraps plain functions as
    request/response endpoints): GET /metrics answers without a redirect to /metrics/."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def error_response(error: GatewayError) -> Response:
    if error.status == 204:
        return Response(status_code=204, headers=error.headers())
    ERRORS.labels(error.code).inc()
    return JSONResponse(
        {"error": {"code": error.code, "message": error.message}},
        status_code=error.status,
        headers=error.headers(),
    )


def _describe(exc: RequestValidationError) -> str:
    """Named as the WebSocket names it: a body field by its path in the body ("topic"), any other by
    where it is ("query.limit")."""
    errors = [
        {**e, "loc": tuple(e.get("loc", ()))[1:] if e.get("loc", ("",))[0] == "body" else e.get("loc", ())}
        for e in exc.errors()
    ]
    return describe_errors(errors)


def create_app(settings: GatewaySettings | None = None, storage: StorageSettings | None = None) -> FastAPI:
    """The gateway: every part made once here (deps.Services) and reached through app.state."""
    settings = settings or GatewaySettings()
    services = Services(settings, storage)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await services.start()
        try:
            yield
        finally:
            await services.stop()

    # /docs and /redoc are apidocs.py's, with their assets served by the gateway rather than a CDN.
    app = FastAPI(title=apidocs.TITLE, version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.services = services
    app.add_middleware(
        Guards,
        allowed_hosts=settings.host_names,
        allowed_origins=settings.origins,
        max_body_bytes=settings.max_body_bytes,
    )

    @app.exception_handler(GatewayError)
    async def on_gateway_error(request: Request, exc: GatewayError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> Response:
        broken = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
        if broken is None:
            return error_response(GatewayError(_describe(exc)))
        # FastAPI parses a body before the route's dependencies run; authentication still comes first
        # (only authenticated routes take a body).
        try:
            await current_client(request, services)
        except GatewayError as refused:
            return error_response(refused)
        except BUS_ERRORS:
            return error_response(Unavailable(UNAVAILABLE_MESSAGE))
        reason = broken.get("ctx", {}).get("error", "JSON decode error")
        return error_response(GatewayError(f"the body is not valid JSON: {reason}", code="invalid_json"))

    async def on_bus_error(request: Request, exc: Exception) -> Response:
        log.warning("bus unavailable", path=request.url.path, error=repr(exc))
        return error_response(Unavailable(UNAVAILABLE_MESSAGE))

    for error in BUS_ERRORS:
        app.add_exception_handler(error, on_bus_error)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> JSONResponse:
        """Live while NATS is connected: during a reconnect nothing can be started or streamed."""
        if services.bus.connected:
            return JSONResponse({"status": "ok", "nats": "connected"})
        return JSONResponse({"status": "unavailable", "nats": "disconnected"}, status_code=503)

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """Ready when NATS is connected and provisioning created the CONTENT stream and the buckets."""
        checks = await services.bus.readiness()
        ready = checks.get("nats") == "connected" and all(
            value == "ok" for name, value in checks.items() if name != "nats"
        )
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", **checks}, status_code=200 if ready else 503
        )

    app.router.routes.append(
        Route("/metrics", _AsgiEndpoint(metrics_app()), methods=["GET"], include_in_schema=False)
    )
    app.include_router(ws.router)
    app.include_router(legacy.router)
    app.include_router(rest_router)
    app.include_router(profiles_router)
    app.include_router(sse_router)
    app.include_router(page_router)
    app.include_router(apidocs.router)
    # A span per HTTP request; probes and scrapes are left out, and so are the WebSocket endpoints: the
    # instrumentation does work for every message a connection sends (a span each by default), which was
    # half of the fan-out's CPU. A job started over a WebSocket is still one trace (job_trace).
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracer_provider(SERVICE),
        excluded_urls="/healthz,/readyz,/metrics,/v1/ws,/content",
        exclude_spans=["receive", "send"],
    )
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
        ws=settings.ws,
        ws_max_size=settings.ws_hard_limit,
        # Liveness is the WebSocket protocol's ping, sent by the server: a client that only listens is
        # never closed while it answers, and a dead one is detected within interval + timeout.
        ws_ping_interval=settings.ping_interval,
        ws_ping_timeout=settings.ping_timeout,
    )
