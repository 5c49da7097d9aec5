"""The gateway's side of the job-state bucket (pressroom_contracts.topology.JOBS_BUCKET): it creates a
job's entry before publishing its job.requested, and reads who owns a job from it in one lookup."""

from __future__ import annotations

import asyncio

from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from pressroom_contracts.jobstate import JobState
from pressroom_contracts.topology import JOBS_BUCKET
from pressroom_runtime.logs import get_logger

from .bus import Bus
from .errors import Conflict, Unavailable

log = get_logger(__name__)


class JobStates:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._kv: KeyValue | None = None
        self._lock = asyncio.Lock()

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            async with self._lock:
                if self._kv is None:
                    try:
                        self._kv = await self.bus.js.key_value(JOBS_BUCKET.name)
                    except BucketNotFoundError:
                        log.error(
                            "the job-state bucket is missing: run provisioning", bucket=JOBS_BUCKET.name
                        )
                        raise Unavailable("the job store is not provisioned; try again later") from None
        return self._kv

    async def create(self, job_id: str, owner: str) -> None:
        """The job's first entry. Creating it again for the same owner (a retried start) is fine."""
        kv = await self._bucket()
        try:
            await kv.create(job_id, JobState(owner=owner).encode())
        except KeyWrongLastSequenceError:
            existing = await self.get(job_id)
            if existing is None or existing.owner != owner:
                raise Conflict(f"job {job_id} exists already", code="conflict") from None

    async def get(self, job_id: str) -> JobState | None:
        """The job's state, or None when the bucket has no (readable) entry for it."""
        kv = await self._bucket()
        try:
            entry = await kv.get(job_id)
        except KeyNotFoundError:  # also a deleted or purged entry
            return None
        try:
            return JobState.decode(entry.value or b"")
        except ValidationError:
            log.warning("skipping an unreadable job-state entry", job_id=job_id)
            return None
