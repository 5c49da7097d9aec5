"""The error → acknowledgement policy of docs/reliability.md, in one place.

- transient (network, timeouts, rate limits, 5xx): NAK with a growing delay, until max_deliver;
- permanent (bad key, bad request, invalid input): TERM at once, and the stage says it failed;
- anything unexpected is treated as transient: a bug costs a few paced retries, never a lost job.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum

import httpx
import openai
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
    code = "transient"


class PermanentError(StageError):
    code = "permanent"


class InvalidInput(PermanentError):
    code = "invalid_event"


class JobStopped(StageError):
    """The job was cancelled or failed meanwhile: the input is acknowledged and nothing more is done."""

    code = "job_stopped"


class Verdict(StrEnum):
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
_OPENAI_TRANSIENT = (
    openai.APIConnectionError,  # includes APITimeoutError
    openai.RateLimitError,
    openai.InternalServerError,
)


def classify(exc: BaseException) -> Classified:
    if isinstance(exc, PermanentError):
        return Classified(Verdict.fail, exc.code, exc.message)
    if isinstance(exc, TransientError):
        return Classified(Verdict.retry, exc.code, exc.message)
    if isinstance(exc, ValidationError):
        return Classified(Verdict.fail, InvalidInput.code, str(exc))
    if isinstance(exc, _OPENAI_PERMANENT):
        code = "provider_auth" if isinstance(exc, openai.AuthenticationError) else "provider_rejected"
        return Classified(Verdict.fail, code, f"model provider refused the request: {exc.message}")
    if isinstance(exc, _OPENAI_TRANSIENT):
        return Classified(Verdict.retry, "provider_unavailable", f"model provider unavailable: {exc}")
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        verdict = Verdict.retry if status == 429 or status >= 500 else Verdict.fail
        return Classified(verdict, f"http_{status}", str(exc))
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError, ConnectionError, OSError, httpx.TransportError)):
        return Classified(Verdict.retry, "unavailable", f"{type(exc).__name__}: {exc}")
    return Classified(Verdict.retry, "internal_error", f"{type(exc).__name__}: {exc}")


def retry_delay(attempt: int, base: float = 1.0, cap: float = 30.0) -> float:
    """Delay before the next delivery: 1 s, 2 s, 4 s … capped, so retries are paced, not immediate."""
    return min(cap, base * 2.0 ** max(0, attempt - 1))
