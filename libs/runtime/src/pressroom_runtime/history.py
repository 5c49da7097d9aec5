"""Reads back what a job already has on the stream.

A stage checks this before paying for work again: when a redelivered input already produced its
result (the process died after publishing but before acking), the result is re-published (the stream
drops the duplicate) and the expensive call is skipped.

Reads are direct gets (no consumer is created), each the next message on the job's subject for that
type: "is there any?" and "the first one" are one round trip, reading all n events n + 1. A stored
message that is not a valid event of that job and type (garbage someone published on the subject) is
skipped with a log line, never raised to the reader.
"""

from __future__ import annotations

from nats.aio.client import Client
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from pressroom_contracts import subjects
from pressroom_contracts.events import Envelope, parse_event

from .logs import get_logger

log = get_logger(__name__)


async def exists(nc: Client, job_id: str, event_type: str) -> bool:
    """Has the job any stored message of this type?"""
    try:
        await nc.jetstream().get_last_msg(subjects.STREAM, subjects.content(job_id, event_type), direct=True)
    except NotFoundError:
        return False
    return True


async def recorded(nc: Client, job_id: str, event_type: str, limit: int | None = None) -> list[Envelope]:
    """Stored events of one type for one job, oldest first: all of them, or the first `limit`."""
    js = nc.jetstream()
    subject = subjects.content(job_id, event_type)
    events: list[Envelope] = []
    seq = 1
    while limit is None or len(events) < limit:
        try:
            msg = await js.get_msg(subjects.STREAM, seq=seq, subject=subject, next=True, direct=True)
        except NotFoundError:
            break
        assert msg.seq is not None  # a direct get always says where the message is
        seq = msg.seq + 1
        try:
            event = parse_event(msg.data or b"")
        except ValidationError:
            log.warning("skipped a stored message that is not a valid event", subject=subject, seq=msg.seq)
            continue
        if event.type != event_type or event.job_id != job_id:
            log.warning(
                "skipped a stored event that does not belong on its subject", subject=subject, seq=msg.seq
            )
            continue
        events.append(event)
    return events
