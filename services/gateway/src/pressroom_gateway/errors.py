"""Every refusal the gateway answers, whatever the transport: a code, a message for a person, and the
HTTP status (and headers) it has over REST and SSE. Over a WebSocket the same refusal is an `error`
frame with the same code and message; on `/content` an `error` message "<code>: <message>".
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class GatewayError(Exception):
    status = 422
    code = "invalid_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self._headers = headers or {}

    def headers(self) -> dict[str, str]:
        return dict(self._headers)


class Unauthenticated(GatewayError):
    status = 401
    code = "unauthenticated"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="pressroom"'}


class Unavailable(GatewayError):
    status = 503
    code = "unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}


class NotFound(GatewayError):
    """Someone else's job answers exactly like a missing one."""

    status = 404
    code = "not_found"

    def __init__(self, job_id: str) -> None:
        shown = job_id if len(job_id) <= 64 else job_id[:64] + "…"  # it may be anything a client sent
        super().__init__(f"no job {shown}")


class Conflict(GatewayError):
    """The job is not in a state that allows this: not_active, not_ready, conflict."""

    status = 409


class RateLimited(GatewayError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class TopicRefused(GatewayError):
    code = "topic_refused"


class BudgetExceeded(GatewayError):
    code = "budget_exceeded"


UNAVAILABLE_MESSAGE = "the message bus is unavailable; try again"
# A key revoked while a connection or event stream uses it: told so, then closed (ws 1008).
REVOKED = "revoked"
REVOKED_MESSAGE = "the API key was revoked"


# ---- the HTTP shape -----------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(description="Machine-readable: not_found, invalid_request, rate_limited, …")
    message: str = Field(description="What went wrong, for a person.")


class ErrorBody(BaseModel):
    error: ErrorDetail


_DESCRIPTIONS = {
    401: "Missing or invalid bearer token.",
    403: "The request's Host or Origin is not allowed (DNS rebinding, another site's page).",
    404: "No such job, or not one of yours.",
    409: "The job is not in a state that allows this (e.g. nothing to edit yet, or it finished).",
    413: "The request body is too large.",
    422: "The request is invalid or refused; `error.code` says why.",
    429: "Too many requests: retry after the Retry-After header's seconds.",
    503: "NATS or the job store is not answering; try again.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for these statuses and those every route may answer, with the error body."""
    return {
        s: {"model": ErrorBody, "description": _DESCRIPTIONS[s]}
        for s in sorted({401, 403, 422, 503, *statuses})
    }
