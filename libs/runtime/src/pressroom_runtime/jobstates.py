"""The job-state bucket (topology.JOBS_BUCKET, entries pressroom_contracts.jobstate.JobState) as every
party uses it: the gateway creates an entry before it publishes job.requested, persistence moves it
forward, stages read it before paid work.

Statuses only move forward (requested → running → completed | failed | cancelled), whatever order two
replicas' writes arrive in: an update is a compare-and-set on the entry's revision that is skipped when
the entry is already as far or further.
"""

from __future__ import annotations

from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from pressroom_contracts.jobstate import FINAL_STATUSES, JobState
from pressroom_contracts.queries import JobStatus
from pressroom_contracts.topology import JOBS_BUCKET

from . import history
from .broker import bus_retry
from .logs import get_logger

log = get_logger(__name__)


def rank(status: JobStatus) -> int:
    if status in FINAL_STATUSES:
        return 2
    return 1 if status is JobStatus.running else 0


class JobStates:
    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._kv: KeyValue | None = None

    async def bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self._nc.jetstream().key_value(JOBS_BUCKET.name)
        return self._kv

    async def get(self, job_id: str) -> JobState | None:
        """The job's entry; None when there is none (or only one this code cannot read)."""
        state, _ = await self._entry(job_id)
        return state

    @bus_retry
    async def _entry(self, job_id: str) -> tuple[JobState | None, int]:
        """The entry and its revision; revision 0: no entry."""
        kv = await self.bucket()
        try:
            entry = await kv.get(job_id)
        except KeyNotFoundError:
            return None, 0
        try:
            return JobState.decode(entry.value or b""), entry.revision or 0
        except ValidationError:
            log.warning("unreadable job state entry", job_id=job_id)
            return None, entry.revision or 0

    async def requested(self, job_id: str) -> bool:
        """Was the job really requested: has it an entry, or (started without one) a job.requested?"""
        _, revision = await self._entry(job_id)
        return bool(revision) or await history.exists(self._nc, job_id, "job.requested")

    @bus_retry
    async def create(self, job_id: str, owner: str) -> bool:
        """A new job's entry (status requested); False when the job already has one."""
        kv = await self.bucket()
        try:
            await kv.create(job_id, JobState(owner=owner).encode())
        except KeyWrongLastSequenceError:
            return False
        return True

    async def advance(self, job_id: str, status: JobStatus, owner: str) -> bool:
        """Moves the entry forward to `status` (creating it when missing); False when it was there already
        or further. `owner` is used only for a missing entry."""
        kv = await self.bucket()
        while True:
            current, revision = await self._entry(job_id)
            if current is not None and rank(current.status) >= rank(status):
                return False
            state = JobState(owner=current.owner if current else owner, status=status)
            try:
                # last=0 creates: it fails when an entry appeared meanwhile.
                await kv.update(job_id, state.encode(), last=revision)
            except KeyWrongLastSequenceError:
                continue  # someone else wrote meanwhile: look again
            return True
