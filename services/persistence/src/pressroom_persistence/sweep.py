"""The stalled-job sweep: a job with no recorded progress for `stale_after` seconds fails as `stalled`,
at the stage it waits for, so no job stays "requested" or "running" for ever — after a restart of the
stack, a message given up on, or any other way its work was lost.

It looks only while persistence has no backlog on its durable: after an outage the events that were
waiting are recorded first, and a job they move on is not stale.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from nats.aio.client import Client

from pressroom_contracts import subjects, topology
from pressroom_runtime.logs import get_logger
from pressroom_runtime.loops import cancel_requested

from .recorder import Emit, Recorder
from .store import Store, translated_errors

log = get_logger(__name__)


class Sweeper:
    def __init__(
        self,
        store: Store,
        recorder: Recorder,
        emitter: Callable[[str], Emit],
        *,
        stale_after: float,
        interval: float,
    ) -> None:
        self.store = store
        self.recorder = recorder
        self.emitter = emitter
        self.stale_after = stale_after
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self, nc: Client) -> None:
        self._task = asyncio.create_task(self._run(nc), name="stalled-job sweep")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, nc: Client) -> None:
        js = nc.jetstream()
        while not cancel_requested():
            await asyncio.sleep(self.interval)
            try:
                info = await js.consumer_info(subjects.STREAM, topology.PERSISTENCE.durable)
                if info.num_pending:
                    continue  # events still to record: nobody is stale yet
                await self.sweep()
            except Exception as exc:  # an outage: look again next time
                log.warning("sweep skipped", error=f"{type(exc).__name__}: {exc}")

    async def sweep(self) -> int:
        """Fails (or announces again) every stalled job it finds; returns how many it announced."""
        with translated_errors():
            found = await self.store.stalled_jobs(self.stale_after)
            announced = 0
            for job_id in found:
                announced += await self.recorder.fail_stalled(job_id, self.stale_after, self.emitter(job_id))
        return announced
