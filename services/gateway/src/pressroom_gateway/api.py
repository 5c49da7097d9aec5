"""What the REST and SSE routers share: the error shape, the route class that produces it, the
per-app services (query client, storage, idempotency) and the ownership check.

Every refusal is `{"error": {"code": …, "message": …}}` with a matching status, like the WebSocket
`error` frame: 404 not_found, 409 not_ready/conflict, 422 invalid_request (and the specific refusals),
429 rate_limited (with Retry-After), 503 unavailable (NATS or persistence not answering).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from nats.js.errors import NotFoundError
from pydantic import BaseModel, Field, ValidationError

from pressroom_contracts import subjects
from pressroom_contracts.events import JobRequestedEvent, parse_event
from pressroom_contracts.jobs import JobRequest
from pressroom_contracts.queries import JobDetail, JobReply, JobStatus, UsageTotal
from pressroom_contracts.subjects import JOB_ID_PATTERN
from pressroom_runtime.logs import get_logger

from .auth import Client, GatewayError, current_client
from .bus import BUS_ERRORS, Bus
from .idempotency import IdempotencyStore
from .presign import Storage, StorageSettings
from .queries import QueryClient, QueryError

log = get_logger(__name__)

T = TypeVar("T")


# ---- errors -------------------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(description="Machine-readable: not_found, invalid_request, rate_limited, …")
    message: str = Field(description="What went wrong, for a person.")


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(GatewayError):
    """A refusal with its status and code; the app's GatewayError handler answers it with the error body
    (and counts it)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self._headers = headers or {}

    def headers(self) -> dict[str, str]:
        return dict(self._headers)


def not_found(job_id: str) -> ApiError:
    # Someone else's job answers exactly like a missing one.
    return ApiError(404, "not_found", f"no job {job_id}")


def from_query_error(exc: QueryError) -> ApiError:
    status = {"not_found": 404, "invalid_request": 422}.get(exc.code, 503)
    return ApiError(status, exc.code if status != 503 else "unavailable", exc.message)


_DESCRIPTIONS = {
    401: "Missing or invalid bearer token.",
    404: "No such job, or not one of yours.",
    409: "The job is not in a state that allows this (e.g. nothing to edit yet).",
    422: "The request is invalid or refused; `error.code` says why.",
    429: "Too many jobs started: retry after the Retry-After header's seconds.",
    503: "NATS or the job store is not answering; try again.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for these statuses and those every route may answer, with the error body."""
    return {
        s: {"model": ErrorBody, "description": _DESCRIPTIONS[s]} for s in sorted({401, 422, 503, *statuses})
    }


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg")))
    return "; ".join(parts) or "invalid request"


class ApiRoute(APIRoute):
    """Makes every refusal of these routes a GatewayError, which the app answers with the error body: a
    persistence QueryError, a request validation error (instead of FastAPI's `detail` list) and an
    unreachable bus; for the dependencies as well as the endpoint (both run inside the route handler).
    A 204 is answered here: it has no body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                if exc.status == 204:
                    return Response(status_code=204, headers=exc.headers())
                raise
            except QueryError as exc:
                raise from_query_error(exc) from None
            except RequestValidationError as exc:
                raise ApiError(422, "invalid_request", _describe(exc)) from None
            except BUS_ERRORS as exc:
                log.warning("bus unavailable", path=request.url.path, error=repr(exc))
                raise ApiError(503, "unavailable", "the message bus is unavailable; try again") from None

        return handle


# ---- per-app services ---------------------------------------------------------------------------------


def _service(request: Request, name: str, make: Callable[[], T]) -> T:
    """One instance per app, made on first use and kept on app.state."""
    state = request.app.state
    value = getattr(state, name, None)
    if value is None:
        value = make()
        setattr(state, name, value)
    return value


def get_bus(request: Request) -> Bus:
    bus: Bus = request.app.state.bus
    return bus


def get_queries(request: Request) -> QueryClient:
    return _service(request, "rest_queries", lambda: QueryClient(get_bus(request)))


def get_storage(request: Request) -> Storage:
    """From app.state.storage_settings when set (tests), else from the environment (S3_*)."""

    def make() -> Storage:
        settings = getattr(request.app.state, "storage_settings", None) or StorageSettings()
        return Storage(settings)

    return _service(request, "rest_storage", make)


def get_idempotency(request: Request) -> IdempotencyStore:
    return _service(request, "rest_idempotency", lambda: IdempotencyStore(get_bus(request)))


CurrentClient = Annotated[Client, Depends(current_client)]
BusDep = Annotated[Bus, Depends(get_bus)]
QueriesDep = Annotated[QueryClient, Depends(get_queries)]
StorageDep = Annotated[Storage, Depends(get_storage)]
IdempotencyDep = Annotated[IdempotencyStore, Depends(get_idempotency)]

_JOB_ID = re.compile(JOB_ID_PATTERN)


def job_id_param(
    job_id: Annotated[str, Path(description="The job's id, as returned when it was created.")],
) -> str:
    # A malformed id cannot name a job: not found, like any other id that is not one of yours.
    if not _JOB_ID.match(job_id):
        raise not_found(job_id)
    return job_id


JobId = Annotated[str, Depends(job_id_param)]


async def requested_event(bus: Bus, job_id: str) -> JobRequestedEvent | None:
    """The job's job.requested from the stream (who started it, with what), or None when the stream does
    not hold it (no such job, or its history expired)."""
    try:
        msg = await bus.js.get_last_msg(subjects.STREAM, subjects.content(job_id, "job.requested"))
        event = parse_event(msg.data or b"")
    except (NotFoundError, ValidationError):
        return None
    return event if isinstance(event, JobRequestedEvent) else None


async def require_owned(job_id: str, client: Client, bus: Bus) -> None:
    """404 unless the job is the client's (bus.owner_of: the stream, else persistence)."""
    if await bus.owner_of(job_id) != client.id:
        raise not_found(job_id)


async def owned_request(job_id: str, client: Client, bus: Bus, queries: QueryClient) -> JobRequest:
    """The job's request, or 404 unless the job is the client's."""
    await require_owned(job_id, client, bus)
    event = await requested_event(bus, job_id)
    if event is not None:
        return event.data.request
    return JobRequest.model_validate((await queries.job(job_id, owner=client.id)).job.request)


async def load_job(job_id: str, client: Client, bus: Bus, queries: QueryClient) -> JobReply:
    """The job as persistence has it (404 when missing or someone else's). A job persistence has not
    recorded yet (it was created a moment ago) answers from its job.requested on the stream: requested,
    nothing produced yet, so a client may GET the job_url right after the POST."""
    try:
        return await queries.job(job_id, owner=client.id)
    except QueryError as exc:
        if exc.code != "not_found":
            raise from_query_error(exc) from None
    await require_owned(job_id, client, bus)
    event = await requested_event(bus, job_id)
    if event is None:
        raise not_found(job_id)
    request = event.data.request
    return JobReply(
        job=JobDetail(
            id=job_id,
            status=JobStatus.requested,
            owner=event.data.owner,
            topic=request.topic,
            title=None,
            created_at=event.occurred_at,
            updated_at=event.occurred_at,
            completed_at=None,
            failure=None,
            cost_usd=0.0,
            budget_usd=request.budget_usd,
            request=request.model_dump(mode="json"),
        ),
        research=None,
        blog=None,
        social={},
        images=None,
        usage_total=UsageTotal(calls=0, input_tokens=0, output_tokens=0, images=0, cost_usd=0.0),
    )
