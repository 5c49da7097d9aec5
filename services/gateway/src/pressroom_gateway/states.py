"""The job-state bucket (pressroom_runtime.jobstates) in the gateway's terms: it creates a job's entry
before publishing its job.requested and reads who owns a job in one lookup; a missing bucket is
`Unavailable`, a job id taken by another client a `Conflict`."""

from __future__ import annotations

from nats.js.errors import BucketNotFoundError

from pressroom_contracts.jobstate import JobState
from pressroom_contracts.topology import JOBS_BUCKET
from pressroom_runtime import jobstates
from pressroom_runtime.logs import get_logger

from .bus import Bus
from .errors import Conflict, Unavailable

log = get_logger(__name__)


class JobStates:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._states: jobstates.JobStates | None = None

    async def _provisioned(self) -> jobstates.JobStates:
        if self._states is None:
            states = jobstates.JobStates(self.bus.nc)
            try:
                await states.bucket()
            except BucketNotFoundError:
                log.error("the job-state bucket is missing: run provisioning", bucket=JOBS_BUCKET.name)
                raise Unavailable("the job store is not provisioned; try again later") from None
            self._states = states
        return self._states

    async def create(self, job_id: str, owner: str) -> None:
        """The job's first entry. Creating it again for the same owner (a retried start) is fine."""
        states = await self._provisioned()
        if not await states.create(job_id, owner):
            existing = await states.get(job_id)
            if existing is None or existing.owner != owner:
                raise Conflict(f"job {job_id} exists already", code="conflict")

    async def get(self, job_id: str) -> JobState | None:
        """The job's state, or None when the bucket has no (readable) entry for it."""
        return await (await self._provisioned()).get(job_id)
