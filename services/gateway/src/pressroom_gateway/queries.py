"""Asks persistence for a job or a page of jobs (`query.job`, `query.jobs`: NATS request/reply).

The bodies and answers are the contract models of pressroom_contracts.queries; an `{"error": …}` answer
becomes a `QueryError` with its code (not_found, invalid_request, unavailable), and so does silence
(no responder, or a timeout): persistence down is `unavailable` (503), never a 500.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import nats.errors
from pydantic import BaseModel, ValidationError

from pressroom_contracts import subjects
from pressroom_contracts.queries import JobQuery, JobReply, JobsQuery, JobsReply
from pressroom_runtime.logs import get_logger

from .bus import Bus
from .errors import GatewayError

log = get_logger(__name__)

DEFAULT_TIMEOUT = 5.0

M = TypeVar("M", bound=BaseModel)


_STATUS = {"not_found": 404, "invalid_request": 422}


class QueryError(GatewayError):
    def __init__(self, code: str, message: str) -> None:
        status = _STATUS.get(code, 503)
        super().__init__(message, code=code if status != 503 else "unavailable", status=status)


class QueryClient:
    def __init__(self, bus: Bus, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.bus = bus
        self.timeout = timeout

    async def job(self, job_id: str, owner: str | None) -> JobReply:
        """The job with its latest artifacts; QueryError("not_found") when missing or someone else's."""
        answer = await self._ask(subjects.QUERY_JOB, JobQuery(job_id=job_id, owner=owner))
        return self._parse(JobReply, answer)

    async def jobs(self, query: JobsQuery) -> JobsReply:
        answer = await self._ask(subjects.QUERY_JOBS, query)
        return self._parse(JobsReply, answer)

    async def _ask(self, subject: str, body: BaseModel) -> dict[str, Any]:
        try:
            reply = await self.bus.nc.request(subject, body.model_dump_json().encode(), timeout=self.timeout)
        except nats.errors.NoRespondersError:
            raise QueryError("unavailable", "the job store is not answering; try again") from None
        except (nats.errors.TimeoutError, TimeoutError):
            raise QueryError("unavailable", "the job store did not answer in time; try again") from None
        try:
            answer = json.loads(reply.data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            answer = None
        if not isinstance(answer, dict):
            log.error("malformed query answer", subject=subject)
            raise QueryError("unavailable", "the job store answered something unreadable")
        error = answer.get("error")
        if isinstance(error, dict):
            raise QueryError(str(error.get("code", "unavailable")), str(error.get("message", "")))
        return answer

    @staticmethod
    def _parse(model: type[M], answer: dict[str, Any]) -> M:
        try:
            return model.model_validate(answer)
        except ValidationError as exc:
            log.error("query answer does not match the contract", model=model.__name__, error=str(exc))
            raise QueryError("unavailable", "the job store answered something unreadable") from None
