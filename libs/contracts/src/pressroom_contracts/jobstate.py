"""The job-state entry of the `pressroom-jobs` key-value bucket (topology.JOBS_BUCKET), key = job id.

One lookup answers the two questions every party asks before acting on a job: was it really requested
(and by whom), and is it still active? The gateway creates the entry before publishing job.requested;
persistence, which decides every status change, moves it forward; stages and gateways only read it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from .queries import JobStatus

# A job in one of these states takes no more paid work.
STOPPED_STATUSES = frozenset({JobStatus.failed, JobStatus.cancelled})
FINAL_STATUSES = frozenset({JobStatus.completed, JobStatus.failed, JobStatus.cancelled})


class JobState(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    owner: str
    status: JobStatus = JobStatus.requested
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def stopped(self) -> bool:
        return self.status in STOPPED_STATUSES

    def encode(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, data: bytes) -> JobState:
        return cls.model_validate_json(data)
