"""The job-state bucket (topology.JOBS_BUCKET, entries pressroom_contracts.jobstate.JobState) as every
party uses it: the gateway creates an entry before it publishes job.requested, persistence moves it
forward, stages read it before paid work.

Statuses only move forward (requested → running → completed | failed | cancelled), whatever order two
replicas' writes arrive in: an update is a compare-and-set on the entry's revision that is skipped when
the entry is already as far or further.

A stage replica looks a job up before each provider call — about fourteen lookups a job, each a round
trip on the job's critical path. It follows the bucket instead (follow()): every entry written from then
on reaches it as it is written, and a lookup of a job it has seen in the last TRUSTED_FOR seconds is
answered from memory; any other job is asked for, as before. Persistence follows it too: a status change
is then one compare-and-set from the revision it knows, asked afresh only after a conflict.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import DeliverPolicy
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KV_DEL, KV_MARKER_REASON, KV_OP, KV_PURGE, KeyValue
from pydantic import ValidationError

from pressroom_contracts.jobstate import FINAL_STATUSES, JobState
from pressroom_contracts.queries import JobStatus
from pressroom_contracts.topology import JOBS_BUCKET

from . import history
from .broker import bus_retry
from .logs import get_logger

log = get_logger(__name__)

# The entries a following replica keeps: far more jobs than it works on at once, bounded memory.
REMEMBERED = 50_000
# How long an entry answers from memory without news of it: a watch that stopped delivering without a
# word would otherwise keep a cancelled job running on a stale entry. A long job is asked again this often.
TRUSTED_FOR = 30.0
# Where the bucket's entries are written: one subject per key.
_KEYS = f"$KV.{JOBS_BUCKET.name}."


def rank(status: JobStatus) -> int:
    if status in FINAL_STATUSES:
        return 2
    return 1 if status is JobStatus.running else 0


Entry = tuple[JobState | None, int]  # the state (None: unreadable) and its revision; revision 0: none


class JobStates:
    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._kv: KeyValue | None = None
        # The newest entry of each job seen and when, while following.
        self._seen: OrderedDict[str, tuple[Entry, float]] | None = None
        self._updates: Subscription | None = None

    async def follow(self) -> None:
        """Keeps the newest entries in memory from now on (the REMEMBERED most recent jobs), fed by an
        ordered consumer on the bucket that delivers each entry as it is written; it resumes by itself
        after a reconnect or a gap."""
        if self._updates is not None:
            return
        try:
            self._updates = await self._nc.jetstream().subscribe(
                f"{_KEYS}>",
                stream=JOBS_BUCKET.stream,
                cb=self._written,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.NEW,
            )
        except nats.errors.Error as exc:  # a missing bucket, say: every lookup asks, as without memory
            log.warning("not following the job-state bucket", error=repr(exc))
            return
        self._seen = OrderedDict()

    async def close(self) -> None:
        updates, self._updates, self._seen = self._updates, None, None
        if updates is not None:
            with contextlib.suppress(nats.errors.Error):
                await updates.unsubscribe()

    async def _written(self, msg: Msg) -> None:
        job_id = msg.subject.removeprefix(_KEYS)
        headers = msg.headers or {}
        if self._seen is not None and (
            headers.get(KV_OP) in (KV_DEL, KV_PURGE) or KV_MARKER_REASON in headers
        ):
            self._seen.pop(job_id, None)
        else:
            self._remember(job_id, (_decode(job_id, msg.data), msg.metadata.sequence.stream))

    def _remember(self, job_id: str, entry: Entry) -> None:
        seen = self._seen
        if seen is None or not entry[1]:
            return
        known = seen.get(job_id)
        if known is None or entry[1] >= known[0][1]:  # a lookup's answer may come after a newer update
            seen[job_id] = (entry, time.monotonic())
            seen.move_to_end(job_id)
            while len(seen) > REMEMBERED:
                seen.popitem(last=False)

    async def bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self._nc.jetstream().key_value(JOBS_BUCKET.name)
        return self._kv

    async def get(self, job_id: str) -> JobState | None:
        """The job's entry; None when there is none (or only one this code cannot read)."""
        state, _ = await self._entry(job_id)
        return state

    async def _entry(self, job_id: str, *, fresh: bool = False) -> Entry:
        """The entry and its revision; revision 0: no entry. From memory when following, unless `fresh`."""
        known = self._seen.get(job_id) if self._seen is not None and not fresh else None
        if known is not None and time.monotonic() - known[1] < TRUSTED_FOR:
            return known[0]
        entry = await self._lookup(job_id)
        self._remember(job_id, entry)
        return entry

    @bus_retry
    async def _lookup(self, job_id: str) -> Entry:
        kv = await self.bucket()
        try:
            entry = await kv.get(job_id)
        except KeyNotFoundError:
            return None, 0
        return _decode(job_id, entry.value), entry.revision or 0

    async def requested(self, job_id: str) -> bool:
        """Was the job really requested: has it an entry, or (started without one) a job.requested?"""
        _, revision = await self._entry(job_id)
        return bool(revision) or await history.exists(self._nc, job_id, "job.requested")

    @bus_retry
    async def create(self, job_id: str, owner: str) -> bool:
        """A new job's entry (status requested); False when the job already has one."""
        kv = await self.bucket()
        state = JobState(owner=owner)
        try:
            revision = await kv.create(job_id, state.encode())
        except KeyWrongLastSequenceError:
            return False
        self._remember(job_id, (state, revision))
        return True

    async def advance(self, job_id: str, status: JobStatus, owner: str) -> bool:
        """Moves the entry forward to `status` (creating it when missing); False when it was there already
        or further. `owner` is used only for a missing entry."""
        kv = await self.bucket()
        fresh = False
        while True:
            current, revision = await self._entry(job_id, fresh=fresh)
            if current is not None and rank(current.status) >= rank(status):
                return False
            state = JobState(owner=current.owner if current else owner, status=status)
            try:
                # last=0 creates: it fails when an entry appeared meanwhile.
                revision = await kv.update(job_id, state.encode(), last=revision)
            except KeyWrongLastSequenceError:
                fresh = True  # someone else wrote meanwhile: ask the bucket, memory may lag behind
                continue
            self._remember(job_id, (state, revision))
            return True


def _decode(job_id: str, value: bytes | None) -> JobState | None:
    try:
        return JobState.decode(value or b"")
    except ValidationError:
        log.warning("unreadable job state entry", job_id=job_id)
        return None
