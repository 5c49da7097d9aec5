"""NATS subject names. Every subject in Pressroom is built here and nowhere else.

Stored events:  content.<job>.<event type>       e.g. content.0190….blog.completed
Live deltas:    live.<job>.<stage>.delta          core NATS, not stored
Queries:        query.<what>                      request/reply answered by persistence
Dead letters:   deadletter.<consumer>             stream DEADLETTER: messages a consumer gave up on
"""

from __future__ import annotations

import re

STREAM = "CONTENT"
LIVE_STREAM = "LIVE"
DEADLETTER_STREAM = "DEADLETTER"
CONTENT_PREFIX = "content"
DEADLETTER_PREFIX = "deadletter"
LIVE_PREFIX = "live"
QUERY_PREFIX = "query"

# Job ids become a subject token: no dots, wildcards or whitespace.
JOB_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_JOB_ID = re.compile(JOB_ID_PATTERN)


class SubjectError(ValueError):
    """A subject that is not one of Pressroom's."""


def _check_job(job_id: str) -> str:
    if not _JOB_ID.match(job_id):
        raise SubjectError(f"invalid job id {job_id!r}")
    return job_id


def content(job_id: str, event_type: str) -> str:
    """The stored subject of one event of one job."""
    return f"{CONTENT_PREFIX}.{_check_job(job_id)}.{event_type}"


def content_of_type(event_type: str) -> str:
    """Filter for one event type across all jobs (what a stage's consumer listens to)."""
    return f"{CONTENT_PREFIX}.*.{event_type}"


def content_of_job(job_id: str) -> str:
    """Filter for every stored event of one job (what a replay reads)."""
    return f"{CONTENT_PREFIX}.{_check_job(job_id)}.>"


def all_content() -> str:
    return f"{CONTENT_PREFIX}.>"


def live(job_id: str, stage: str) -> str:
    """Core-NATS subject of a stage's text as it is generated."""
    return f"{LIVE_PREFIX}.{_check_job(job_id)}.{stage}.delta"


def live_of_job(job_id: str) -> str:
    return f"{LIVE_PREFIX}.{_check_job(job_id)}.>"


def all_live() -> str:
    return f"{LIVE_PREFIX}.>"


def query(what: str) -> str:
    return f"{QUERY_PREFIX}.{what}"


def deadletter(consumer: str) -> str:
    """Where a consumer records a message it terminated or that the server gave up delivering to it."""
    return f"{DEADLETTER_PREFIX}.{consumer}"


def all_deadletters() -> str:
    return f"{DEADLETTER_PREFIX}.>"


def max_deliveries_advisory(stream: str = STREAM, consumer: str = "*") -> str:
    """nats-server's advisory for a message it stopped delivering after the consumer's max_deliver."""
    return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{consumer}"


QUERY_JOB = query("job")
QUERY_JOBS = query("jobs")


def parse_content(subject: str) -> tuple[str, str]:
    """(job id, event type) of a stored subject; SubjectError if it is not one."""
    parts = subject.split(".", 2)
    if len(parts) != 3 or parts[0] != CONTENT_PREFIX or not _JOB_ID.match(parts[1]):
        raise SubjectError(f"not a content subject: {subject!r}")
    return parts[1], parts[2]


def parse_live(subject: str) -> tuple[str, str]:
    """(job id, stage) of a live delta subject."""
    parts = subject.split(".")
    if len(parts) != 4 or parts[0] != LIVE_PREFIX or parts[3] != "delta" or not _JOB_ID.match(parts[1]):
        raise SubjectError(f"not a live subject: {subject!r}")
    return parts[1], parts[2]
