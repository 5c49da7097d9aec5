"""What each recorded event does to the system of record, and when the job ends. No broker here:
results are announced through the `emit` callable the consumer hands in.

At-least-once rules: every write is idempotent; an announcement is published only after the
transaction that decided it committed; and a redelivered input re-announces a job's end until that
announcement has come back through the stream (its de-duplication key makes the stream drop the
copy), which covers a crash between the commit and the publish.

Status changes: requested → running → completed | failed | cancelled. A finished job keeps its status:
later artifacts (regenerations, edits, late arrivals) are stored as versions and announce nothing.
Every change is mirrored into the job-state bucket (`sync`) after its commit and before its
announcement, so a stage never sees a stopped job as active once the news is out.

An event for a job that is not recorded waits (a paced redelivery) while the job was requested — its
job-state entry or job.requested exists, and job.requested is on its way —, and is refused as
`job_unknown` otherwise. A job with no progress for `stale_after` seconds fails as `stalled`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, NoReturn

from pydantic import BaseModel

from pressroom_contracts.events import (
    BlogCompletedEvent,
    BlogEditedEvent,
    CancelRequestedEvent,
    Envelope,
    ImageCompletedEvent,
    JobCancelled,
    JobCancelledEvent,
    JobCompleted,
    JobCompletedEvent,
    JobFailed,
    JobFailedEvent,
    JobRequestedEvent,
    ResearchCompletedEvent,
    SocialCompletedEvent,
    SocialEditedEvent,
    Stage,
    StageFailedEvent,
    StageProgressEvent,
    UsageRecordedEvent,
)
from pressroom_contracts.jobs import JobRequest
from pressroom_runtime.errors import JobUnknown, TransientError
from pressroom_runtime.logs import get_logger

from .completion import completion, missing
from .store import ACTIVE, JobTx, StatusRow, Store, UnknownJob

log = get_logger(__name__)

Emit = Callable[[type[Envelope], BaseModel], Awaitable[Any]]
# (job id, status, owner) → the job-state bucket, moved forward only.
Sync = Callable[[str, str, str | None], Awaitable[Any]]

BUDGET_EXCEEDED = "budget_exceeded"
STALLED = "stalled"
_SYNCED_JOBS = 10_000  # statuses this replica remembers having mirrored

# Stored as versions; while the job runs, each may be the one that completes it.
_ARTIFACTS = (
    ResearchCompletedEvent,
    BlogCompletedEvent,
    BlogEditedEvent,
    SocialCompletedEvent,
    SocialEditedEvent,
    ImageCompletedEvent,
)


class Recorder:
    def __init__(
        self,
        store: Store,
        *,
        default_budget_usd: float | None = None,
        was_requested: Callable[[str], Awaitable[bool]] | None = None,
        sync: Sync | None = None,
    ) -> None:
        """`was_requested(job_id)`: has the job a job-state entry or a job.requested on the stream (None:
        assume so). `sync`: mirrors a status change into the job-state bucket (None: no bucket)."""
        self.store = store
        self.default_budget_usd = default_budget_usd
        self.was_requested = was_requested
        self.sync = sync
        self._synced: OrderedDict[str, str] = OrderedDict()

    async def record(self, event: Envelope, emit: Emit) -> None:
        if isinstance(event, JobRequestedEvent):
            await self.store.add_job(event, self.default_budget_usd)
        elif isinstance(event, _ARTIFACTS):
            await self._artifact(event, emit)
        elif isinstance(event, StageProgressEvent):
            state = await self.store.progress(event)
            if state is None:
                await self._unrecorded(event)
            else:
                await self._sync(state)
        elif isinstance(event, UsageRecordedEvent):
            await self._usage(event, emit)
        elif isinstance(event, StageFailedEvent):
            await self._stage_failed(event, emit)
        elif isinstance(event, CancelRequestedEvent):
            await self._cancel(event, emit)
        elif isinstance(event, JobCancelledEvent):
            # Our own announcement coming back (or one published directly): the job is cancelled.
            async with self._job(event) as job:
                await job.move("cancelled", ACTIVE, cancel_reason=event.data.reason, by=event)
            await self._sync(job)
        else:
            # job.completed / job.failed: our own announcements, logged so we know they were published;
            # regenerate.requested: for the stages, logged for the record.
            await self.store.log_event(event)

    @asynccontextmanager
    async def _job(self, event: Envelope) -> AsyncIterator[JobTx]:
        """The event's job, locked, with the event logged."""
        try:
            async with self.store.job(event.job_id, handling=event) as job:
                yield job
        except UnknownJob:
            await self._unrecorded(event)

    async def _unrecorded(self, event: Envelope) -> NoReturn:
        """Raises what an event of a job that is not recorded deserves."""
        if self.was_requested is None or await self.was_requested(event.job_id):
            # Its job.requested is on its way (or waiting for a retry): try again later.
            raise TransientError(f"job {event.job_id} is not recorded yet", code="not_recorded_yet")
        raise JobUnknown(f"job {event.job_id} was never requested")

    async def _sync(self, job: JobTx | StatusRow) -> None:
        """Mirrors the job's status into the bucket, once per change as far as this replica knows."""
        if self.sync is None or job.status == "requested" or self._synced.get(job.id) == job.status:
            return
        await self.sync(job.id, job.status, job.owner)
        self._synced[job.id] = job.status
        self._synced.move_to_end(job.id)
        while len(self._synced) > _SYNCED_JOBS:
            self._synced.popitem(last=False)

    async def _artifact(self, event: Envelope, emit: Emit) -> None:
        """Stores the artifact as a new version. Only a running job can complete: on a finished job
        (a regeneration or an edit after completion, or anything after a cancel or a failure) the
        version is stored and the status stays as it is."""
        announce: JobCompleted | None = None
        async with self._job(event) as job:
            inserted = await _ADD[type(event)](job, event)
            if job.logged and not inserted:
                # A different event claimed the same version first; this one stays in the event log only.
                log.warning("artifact version already recorded by another event", type=event.type)
            request = JobRequest.model_validate(job.request)
            if job.status in ACTIVE:
                artifacts = await job.artifacts()
                done = completion(request, artifacts)
                if done is None:
                    await job.move("running", ("requested",))
                    log.debug("job waits", waiting=missing(request, artifacts))
                elif await job.move("completed", ACTIVE, by=event):
                    announce = done
            elif (
                job.status == "completed"
                and await job.ended_by() == event.id
                and not await job.announced("job.completed")
            ):
                # The redelivery of the artifact that completed the job, after a crash between the
                # commit and the publish. Any other version on a completed job announces nothing.
                announce = completion(request, await job.artifacts())
            elif inserted and job.status != "completed":
                log.info("artifact of a finished job stored; its status stays", status=job.status)
        await self._sync(job)
        if announce is not None:  # after the commit
            await emit(JobCompletedEvent, announce)
            log.info("job completed", title=announce.blog_title)

    async def _usage(self, event: UsageRecordedEvent, emit: Emit) -> None:
        """Adds the call's cost; a running job whose cost goes over its budget fails, at the usage's stage."""
        usage = await self.store.usage(event)
        if usage is None:
            await self._unrecorded(event)
        if usage.stored and not usage.overran_budget:
            return  # the common case, in one statement: nothing to decide
        # Over the budget, or a report seen before (a redelivery: perhaps after a crash between storing
        # it and failing the job, or between the failure and its announcement): decided under the lock.
        announce: JobFailed | None = None
        async with self._job(event) as job:
            if job.status in ACTIVE and job.over_budget():
                failure = JobFailed(
                    stage=event.data.stage,
                    code=BUDGET_EXCEEDED,
                    message=f"estimated cost ${job.cost_usd:.4f} exceeded the job's budget "
                    f"of ${job.budget_usd:.4f}",
                )
                if await job.move("failed", ACTIVE, failure=failure, by=event):
                    announce = failure
            elif job.status == "failed" and not await job.announced("job.failed"):
                announce = await job.failure()
        await self._sync(job)
        if announce is not None:
            await emit(JobFailedEvent, announce)
            log.warning("job failed", stage=announce.stage, code=announce.code, reason=announce.message)

    async def _cancel(self, event: CancelRequestedEvent, emit: Emit) -> None:
        announce: JobCancelled | None = None
        async with self._job(event) as job:
            if await job.move("cancelled", ACTIVE, cancel_reason=event.data.reason, by=event):
                announce = JobCancelled(reason=event.data.reason)
            elif job.status == "cancelled":
                if not await job.announced("job.cancelled"):
                    # A redelivery, or a second request, before job.cancelled came back: the same news.
                    announce = JobCancelled(reason=await job.cancel_reason() or event.data.reason)
            else:
                log.info("cancel of a finished job ignored", status=job.status)
        await self._sync(job)
        if announce is not None:
            await emit(JobCancelledEvent, announce)
            log.info("job cancelled", reason=announce.reason, by=event.data.requested_by)

    async def _stage_failed(self, event: StageFailedEvent, emit: Emit) -> None:
        announce: JobFailed | None = None
        d = event.data
        async with self._job(event) as job:
            failure = JobFailed(stage=d.stage, code=d.code, message=d.message)
            if await job.move("failed", ACTIVE, failure=failure, by=event):
                announce = failure
            elif job.status == "failed" and not await job.announced("job.failed"):
                # A redelivery after a crash: announce the failure that was recorded first.
                announce = await job.failure()
            else:
                log.info("late stage.failed ignored", status=job.status, stage=d.stage)
        await self._sync(job)
        if announce is not None:
            await emit(JobFailedEvent, announce)
            log.info("job failed", stage=announce.stage, code=announce.code)

    async def fail_stalled(self, job_id: str, stale_after: float, emit: Emit) -> bool:
        """Fails a job that made no progress for `stale_after` seconds (the sweep found it), at the stage
        it waits for; or announces again such a failure whose job.failed never came back. True when it
        announced."""
        announce: JobFailed | None = None
        async with self.store.job(job_id) as job:
            if job.status in ACTIVE:
                if not await job.idle_for(stale_after):
                    return False  # progressed since the sweep looked
                artifacts = await job.artifacts()
                waiting = missing(JobRequest.model_validate(job.request), artifacts)
                stage = _stage_of(waiting[0]) if artifacts.has_research and waiting else Stage.research
                failure = JobFailed(
                    stage=stage,
                    code=STALLED,
                    message=f"no progress for {stale_after:.0f} s while waiting for "
                    + (", ".join(waiting) if artifacts.has_research else "research"),
                )
                if await job.move("failed", ACTIVE, failure=failure):
                    announce = failure
            elif job.status == "failed" and not await job.announced("job.failed"):
                announce = await job.failure()
        await self._sync(job)
        if announce is not None:
            await emit(JobFailedEvent, announce)
            log.warning("job failed", stage=announce.stage, code=announce.code, reason=announce.message)
        return announce is not None


def _stage_of(waiting_for: str) -> Stage:
    """The stage that makes an artifact missing() names: blog, social:<platform>, image."""
    return Stage(waiting_for.split(":", 1)[0])


_ADD: dict[type[Envelope], Callable[[JobTx, Any], Awaitable[bool]]] = {
    ResearchCompletedEvent: JobTx.add_research,
    BlogCompletedEvent: JobTx.add_blog,
    BlogEditedEvent: JobTx.add_blog_edit,
    SocialCompletedEvent: JobTx.add_social,
    SocialEditedEvent: JobTx.add_social_edit,
    ImageCompletedEvent: JobTx.add_image,
}
