"""Removes stored pictures that no image.completed event refers to (an upload whose event never came).

Only objects the stream can vouch for are judged: an object is uploaded before its event, so an object
newer than the stream's oldest message (and its creation) would have its event still on the stream.
Older objects are left alone, whatever the stream's retention, so history that aged out never makes a
live picture look orphaned.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from nats.aio.client import Client
from nats.js.errors import NotFoundError
from prometheus_client import Counter

from pressroom_contracts import subjects
from pressroom_contracts.events import ImageCompletedEvent
from pressroom_runtime.history import recorded
from pressroom_runtime.logs import get_logger
from pressroom_runtime.objectstore import ListedObject, ObjectStore

from .storage import PREFIX, job_of

log = get_logger(__name__)

SWEEPS = Counter("pressroom_orphan_sweeps_total", "Orphan sweeps of the object store, by outcome: ok, failed.",
                 ["outcome"])  # fmt: skip
ORPHANS_DELETED = Counter("pressroom_orphans_deleted_total", "Stored pictures deleted as orphans.")

# Clock differences between the object store and NATS: judge nothing this close to the horizon.
HORIZON_MARGIN = timedelta(minutes=5)


@dataclass
class SweepReport:
    deleted: list[str] = field(default_factory=list)
    kept: int = 0  # old enough, and referenced
    skipped: int = 0  # too young, beyond the stream's history, or not a key this service writes


async def stream_horizon(nc: Client, now: datetime) -> datetime | None:
    """The oldest moment the CONTENT stream still remembers; None when it does not exist."""
    js = nc.jetstream()
    try:
        info = await js.stream_info(subjects.STREAM)
    except NotFoundError:
        return None
    bounds = [info.created] if info.created else []
    if info.config.max_age:
        bounds.append(now - timedelta(seconds=info.config.max_age))
    if info.state.messages:
        with contextlib.suppress(NotFoundError):
            first = await js.get_msg(subjects.STREAM, seq=info.state.first_seq)
            if first.time:
                bounds.append(first.time)
    if not bounds:
        return None
    return max(b if b.tzinfo else b.replace(tzinfo=UTC) for b in bounds)


async def referenced_keys(nc: Client, job_id: str) -> set[str]:
    keys: set[str] = set()
    for event in await recorded(nc, job_id, ImageCompletedEvent.model_fields["type"].default):
        keys.add(event.data.object_key)
        keys.update(variant.object_key for variant in event.data.variants)
    return keys


async def sweep_orphans(
    store: ObjectStore,
    nc: Client,
    *,
    older_than: timedelta,
    now: datetime | None = None,
    prefix: str = PREFIX,
    margin: timedelta = HORIZON_MARGIN,
) -> SweepReport:
    """Deletes objects under `prefix` older than `older_than` that no image.completed names."""
    now = now or datetime.now(UTC)
    report = SweepReport()
    horizon = await stream_horizon(nc, now)
    if horizon is None:
        log.warning("orphan sweep skipped: the stream is not there to vouch for any object")
        return report
    # S3 reports upload times to the second: compare at that resolution.
    oldest_judged = horizon.replace(microsecond=0) + margin
    candidates: dict[str, list[ListedObject]] = defaultdict(list)
    for item in await store.list_objects(prefix):
        job_id = job_of(item.key)
        if job_id is None or item.last_modified > now - older_than or item.last_modified < oldest_judged:
            report.skipped += 1
            continue
        candidates[job_id].append(item)
    for job_id, items in candidates.items():
        referenced = await referenced_keys(nc, job_id)
        orphans = [item.key for item in items if item.key not in referenced]
        report.kept += len(items) - len(orphans)
        if orphans:
            await store.delete(*orphans)
            report.deleted.extend(orphans)
            log.info("deleted orphaned objects", job_id=job_id, keys=orphans)
    return report


async def run_sweeper(
    sweep: Callable[[], Awaitable[SweepReport]], interval: float, first_delay: float | None = None
) -> None:
    """Sweeps every `interval` seconds until cancelled; a failed sweep is logged and tried again later."""
    await asyncio.sleep(interval if first_delay is None else first_delay)
    while True:
        try:
            report = await sweep()
            SWEEPS.labels("ok").inc()
            ORPHANS_DELETED.inc(len(report.deleted))
            log.debug("orphan sweep done", deleted=len(report.deleted), kept=report.kept,
                      skipped=report.skipped)  # fmt: skip
        except asyncio.CancelledError:
            raise
        except Exception:
            SWEEPS.labels("failed").inc()
            log.exception("orphan sweep failed; trying again at the next interval")
        await asyncio.sleep(interval)
