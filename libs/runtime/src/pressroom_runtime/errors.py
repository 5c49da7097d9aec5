"""The error → acknowledgement policy, in one place (docs/reliability.md).

- wait (a dependency is down: NATS, PostgreSQL, S3, the model provider, a rate limit): the message is
  kept and its handler tried again at a paced interval for as long as it takes, while the replica
  fetches nothing new; an outage costs no delivery attempt;
- retry (anything unexpected — a bug —, or an input that is not ready yet): NAK with a growing delay,
  until max_deliver; then the message is given up on like a permanent failure;
- fail (bad key, bad request, an input the handler refuses): TERM at once, and the stage says it failed.

A message that is invalid in itself never reaches a handler: it is terminated and recorded as a dead
letter (consumer.py), and so is a message for a job that was never requested (JobUnknown).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum

import httpx
import nats.errors
import openai
from nats.js.errors import ServiceUnavailableError
from pydantic import ValidationError


class StageError(Exception):
    """An error a stage raises on purpose, with a machine-readable code for the client."""

    code = "stage_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class TransientError(StageError):
    """Worth trying again later. With one of OUTAGE_CODES it means a dependency is down."""

    code = "transient"


class Unavailable(TransientError):
    """A dependency (database, object store, bus, provider) cannot be reached right now."""

    code = "unavailable"


class PermanentError(StageError):
    code = "permanent"


class InvalidInput(PermanentError):
    code = "invalid_event"


class JobUnknown(PermanentError):
    """No job-state entry and no job.requested on the stream: nobody asked for this job."""

    code = "job_unknown"


class JobStopped(StageError):
    """The job was cancelled or failed meanwhile: the input is acknowledged and nothing more is done."""

    code = "job_stopped"


# Transient errors that mean "a dependency is down" rather than "this message had bad luck": waited out.
OUTAGE_CODES = frozenset(
    {"unavailable", "provider_unavailable", "provider_rate_limited", "storage_unavailable"}
)


class Verdict(StrEnum):
    wait = "wait"
    retry = "retry"
    fail = "fail"


@dataclass(frozen=True)
class Classified:
    verdict: Verdict
    code: str
    message: str


_OPENAI_PERMANENT = (
    openai.AuthenticationError,
    openai.PermissionDeniedError,
    openai.BadRequestError,
    openai.NotFoundError,
    openai.UnprocessableEntityError,
)
_OPENAI_OUTAGE = (
    openai.APIConnectionError,  # includes APITimeoutError
    openai.RateLimitError,
    openai.InternalServerError,
)
_NATS_OUTAGE = (
    nats.errors.ConnectionClosedError,
    nats.errors.NoServersError,
    nats.errors.NoRespondersError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    ServiceUnavailableError,
)


def classify(exc: BaseException) -> Classified:
    if isinstance(exc, PermanentError):
        return Classified(Verdict.fail, exc.code, exc.message)
    if isinstance(exc, TransientError):
        verdict = Verdict.wait if exc.code in OUTAGE_CODES else Verdict.retry
        return Classified(verdict, exc.code, exc.message)
    if isinstance(exc, ValidationError):
        return Classified(Verdict.fail, InvalidInput.code, str(exc))
    if isinstance(exc, _OPENAI_PERMANENT):
        code = "provider_auth" if isinstance(exc, openai.AuthenticationError) else "provider_rejected"
        return Classified(Verdict.fail, code, f"model provider refused the request: {exc.message}")
    if isinstance(exc, _OPENAI_OUTAGE):
        return Classified(Verdict.wait, "provider_unavailable", f"model provider unavailable: {exc}")
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        if status == 429 or status >= 500:
            return Classified(Verdict.wait, "provider_unavailable", str(exc))
        return Classified(Verdict.fail, f"http_{status}", str(exc))
    if isinstance(exc, (*_NATS_OUTAGE, TimeoutError, asyncio.TimeoutError, OSError, httpx.TransportError)):
        # nats.errors.TimeoutError is an asyncio.TimeoutError; ConnectionError is an OSError.
        return Classified(Verdict.wait, "unavailable", f"{type(exc).__name__}: {exc}")
    return Classified(Verdict.retry, "internal_error", f"{type(exc).__name__}: {exc}")


def is_outage(exc: BaseException) -> bool:
    return classify(exc).verdict is Verdict.wait


def retry_delay(attempt: int, base: float = 1.0, cap: float = 30.0) -> float:
    """Delay before the next delivery: base, twice that, four times … capped, so retries are paced."""
    return min(cap, base * 2.0 ** max(0, attempt - 1))
