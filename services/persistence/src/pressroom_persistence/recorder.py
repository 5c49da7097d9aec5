"""What each recorded event does to the system of record, and when the job ends. No broker here:
results are announced through the `emit` callable the consumer hands in.

At-least-once rules: every write is idempotent; an announcement is published only after the
transaction that decided it committed; and a redelivered input re-announces a job's end until that
announcement has come back through the stream (its de-duplication key makes the stream drop the
copy), which covers a crash between the commit and the publish.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from pydantic import BaseModel

from pressroom_contracts.events import (
    BlogCompletedEvent,
    Envelope,
    ImageCompletedEvent,
    JobCancelledEvent,
    JobCompleted,
    JobCompletedEvent,
    JobFailed,
    JobFailedEvent,
    JobRequestedEvent,
    ResearchCompletedEvent,
    SocialCompletedEvent,
    StageFailedEvent,
    StageProgressEvent,
    UsageRecordedEvent,
)
from pressroom_contracts.jobs import JobRequest
from pressroom_runtime.errors import TransientError
from pressroom_runtime.logs import get_logger

from .completion import completion, missing
from .store import ACTIVE, JobTx, Store, UnknownJob

log = get_logger(__name__)

Emit = Callable[[type[Envelope], BaseModel], Awaitable[Any]]

_ARTIFACTS = (ResearchCompletedEvent, BlogCompletedEvent, SocialCompletedEvent, ImageCompletedEvent)


class Recorder:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def record(self, event: Envelope, emit: Emit) -> None:
        if isinstance(event, JobRequestedEvent):
            await self.store.add_job(event)
        elif isinstance(event, _ARTIFACTS):
            await self._artifact(event, emit)
        elif isinstance(event, StageProgressEvent):
            async with self._job(event) as job:
                await job.log(event)
                await job.move("running", ("requested",))
        elif isinstance(event, UsageRecordedEvent):
            async with self._job(event) as job:
                await job.log(event)
                await job.add_usage(event)
        elif isinstance(event, StageFailedEvent):
            await self._stage_failed(event, emit)
        elif isinstance(event, JobCancelledEvent):
            async with self._job(event) as job:
                await job.log(event)
                await job.move("cancelled", ACTIVE)
        else:
            # job.completed / job.failed: our own announcements, logged so we know they were published.
            await self.store.log_event(event)

    @asynccontextmanager
    async def _job(self, event: Envelope) -> AsyncIterator[JobTx]:
        try:
            async with self.store.job(event.job_id) as job:
                yield job
        except UnknownJob:
            # Its job.requested may still be on its way (or waiting for a retry): try again later.
            raise TransientError(f"job {event.job_id} is not recorded yet", code="unknown_job") from None

    async def _artifact(self, event: Envelope, emit: Emit) -> None:
        announce: JobCompleted | None = None
        async with self._job(event) as job:
            await job.log(event)
            await _ADD[type(event)](job, event)
            request = JobRequest.model_validate(job.request)
            artifacts = await job.artifacts()
            done = completion(request, artifacts)
            if done is None:
                await job.move("running", ("requested",))
                log.debug("job waits", waiting=missing(request, artifacts))
            elif (
                await job.move("completed", ACTIVE) or job.status == "completed"
            ) and not await job.announced("job.completed"):
                announce = done
        if announce is not None:  # after the commit
            await emit(JobCompletedEvent, announce)
            log.info("job completed", title=announce.blog_title)

    async def _stage_failed(self, event: StageFailedEvent, emit: Emit) -> None:
        announce: JobFailed | None = None
        d = event.data
        async with self._job(event) as job:
            await job.log(event)
            failure = JobFailed(stage=d.stage, code=d.code, message=d.message)
            if await job.move("failed", ACTIVE, failure=failure):
                announce = failure
            elif job.status == "failed" and not await job.announced("job.failed"):
                # A redelivery after a crash: announce the failure that was recorded first.
                announce = await job.failure()
            else:
                log.info("late stage.failed ignored", status=job.status, stage=d.stage)
        if announce is not None:
            await emit(JobFailedEvent, announce)
            log.info("job failed", stage=announce.stage, code=announce.code)


_ADD: dict[type[Envelope], Callable[[JobTx, Any], Awaitable[bool]]] = {
    ResearchCompletedEvent: JobTx.add_research,
    BlogCompletedEvent: JobTx.add_blog,
    SocialCompletedEvent: JobTx.add_social,
    ImageCompletedEvent: JobTx.add_image,
}
