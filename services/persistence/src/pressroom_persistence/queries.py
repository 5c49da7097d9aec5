"""The request/reply reads (`query.job`, `query.jobs`): their bodies, their answers, their errors.

A query never crashes the handler: a malformed body gets {"error": {"code": "invalid_request", …}}.
The models are the contract with the gateway, in pressroom_contracts.queries.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from pressroom_contracts.protocol import describe_validation_error
from pressroom_contracts.queries import (
    JobDetail,
    JobQuery,
    JobReply,
    JobsQuery,
    JobsReply,
    JobSummary,
)
from pressroom_runtime.logs import get_logger

from .store import Store

log = get_logger(__name__)


class QueryError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ---- answering ----------------------------------------------------------------------------------------


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    failure = None
    if row["failed_stage"] is not None:
        failure = {
            "stage": row["failed_stage"],
            "code": row["failure_code"],
            "message": row["failure_message"],
        }
    return {**row, "topic": row["request"].get("topic", ""), "failure": failure}


async def _job(store: Store, body: bytes) -> BaseModel:
    query = JobQuery.model_validate_json(body)
    found = await store.job_detail(query.job_id)
    # Someone else's job is reported exactly like a missing one: ids are not secrets, jobs are.
    if found is None or (query.owner is not None and found["job"]["owner"] != query.owner):
        raise QueryError("not_found", f"no job {query.job_id}")
    history = found["history"]
    blog, image = found["blog"], found["image"]
    social = {
        p: {**row, "limit": row["char_limit"], "versions": history["social"].get(p, [])}
        for p, row in found["social"].items()
    }
    return JobReply(
        job=JobDetail.model_validate(_summary(found["job"])),
        research=found["research"],
        blog={**blog, "versions": history["blog"]} if blog else None,
        social=social,
        images={**image, "versions": history["image"]} if image else None,
        usage_total=found["usage"],
    )


async def _jobs(store: Store, body: bytes) -> BaseModel:
    query = JobsQuery.model_validate_json(body)
    after = decode_cursor(query.cursor) if query.cursor else None
    # One more than asked tells whether there is a next page without counting.
    rows = await store.list_jobs(
        owner=query.owner,
        status=query.status.value if query.status else None,
        limit=query.limit + 1,
        after=after,
    )
    page = rows[: query.limit]
    next_cursor = encode_cursor(page[-1]["created_at"], page[-1]["id"]) if len(rows) > query.limit else None
    return JobsReply(jobs=[JobSummary.model_validate(_summary(r)) for r in page], next_cursor=next_cursor)


def encode_cursor(created_at: datetime, job_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), job_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, job_id = json.loads(raw)
        parsed = datetime.fromisoformat(created_at)
        if parsed.tzinfo is None or not isinstance(job_id, str):
            raise ValueError("incomplete cursor")
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise QueryError("invalid_request", "cursor: not a cursor this service issued") from None
    return parsed, job_id


async def _answer(
    run: Callable[[Store, bytes], Awaitable[BaseModel]], store: Store, body: bytes
) -> dict[str, Any]:
    try:
        return (await run(store, body or b"{}")).model_dump(mode="json")
    except ValidationError as exc:
        return _error("invalid_request", describe_validation_error(exc))
    except QueryError as exc:
        return _error(exc.code, exc.message)
    except Exception:
        # The asker gets an answer instead of a timeout; the details stay in our log.
        log.exception("query failed")
        return _error("unavailable", "the query could not be answered; try again")


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


async def answer_job(store: Store, body: bytes) -> dict[str, Any]:
    return await _answer(_job, store, body)


async def answer_jobs(store: Store, body: bytes) -> dict[str, Any]:
    return await _answer(_jobs, store, body)
