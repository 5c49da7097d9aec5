"""The gateway's reads of the CONTENT stream, in one place: direct gets by subject, no consumer.

A stored message that is not a valid event (garbage published by someone else, or an event of a newer
schema) is skipped with a log line: a reader never fails a request because of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nats.js.errors import NotFoundError
from pydantic import ValidationError

from pressroom_contracts import subjects
from pressroom_contracts.events import Envelope, Event, parse_event
from pressroom_runtime.logs import get_logger

from .bus import Bus

log = get_logger(__name__)


@dataclass(frozen=True)
class Stored:
    """One stored message of a job, as raw bytes (what a watcher is sent)."""

    seq: int
    subject: str
    data: bytes
    time: datetime | None = None  # when the server stored it


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    event: Event


def parse_stored(stored: Stored) -> Event | None:
    try:
        return parse_event(stored.data)
    except ValidationError as exc:
        log.warning(
            "skipping a stored message that is not a valid event",
            subject=stored.subject,
            seq=stored.seq,
            error=str(exc.errors()[:1]),
        )
        return None


class EventStore:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def _get(self, **options: Any) -> Stored | None:
        try:
            msg = await self.bus.js.get_msg(subjects.STREAM, **options)
        except NotFoundError:
            return None
        return Stored(seq=msg.seq or 0, subject=msg.subject or "", data=msg.data or b"", time=msg.time)

    async def next_of_job(self, job_id: str, from_seq: int) -> Stored | None:
        """The job's first stored message at or after `from_seq`."""
        return await self._get(seq=max(1, from_seq), subject=subjects.content_of_job(job_id), next=True)

    async def last(self, job_id: str, event_type: str) -> StoredEvent | None:
        """The job's latest valid event of this type: one read when it is valid, else a walk."""
        subject = subjects.content(job_id, event_type)
        try:
            msg = await self.bus.js.get_last_msg(subjects.STREAM, subject)
        except NotFoundError:
            return None
        stored = Stored(seq=msg.seq or 0, subject=subject, data=msg.data or b"")
        event = parse_stored(stored)
        if event is not None:
            return StoredEvent(stored.seq, event)
        found = await self.of_type(job_id, event_type)
        return found[-1] if found else None

    async def of_type(self, job_id: str, event_type: str) -> list[StoredEvent]:
        """Every valid stored event of one type of the job, oldest first."""
        subject = subjects.content(job_id, event_type)
        found: list[StoredEvent] = []
        seq = 1
        while (stored := await self._get(seq=seq, subject=subject, next=True)) is not None:
            event = parse_stored(stored)
            if event is not None:
                found.append(StoredEvent(stored.seq, event))
            seq = stored.seq + 1
        return found

    async def at(self, seq: int) -> Envelope | None:
        """The valid event stored at `seq`, if any."""
        stored = await self._get(seq=seq)
        return parse_stored(stored) if stored is not None else None

    async def bounds(self) -> tuple[int, int]:
        """The stream's first and last sequence."""
        state = (await self.bus.js.stream_info(subjects.STREAM)).state
        return state.first_seq, state.last_seq
