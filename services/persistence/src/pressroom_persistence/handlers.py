"""What persistence listens to and answers. Thin: the logic is in recorder.py, queries.py and sweep.py.

content.>      durable `persistence` (every stored event)  → records it, mirrors status changes into the
                                                             job-state bucket; may publish job.completed /
                                                             job.failed / job.cancelled
MAX_DELIVERIES durable `deadletter` (stream DEADLETTER)     → a dead letter, and stage.failed for its stage
  advisories
query.job      request/reply, queue group `persistence`     → one job, its latest artifacts and their versions
query.jobs     request/reply, queue group `persistence`     → a page of jobs, newest first
(timer)        the stalled-job sweep                        → job.failed (stalled)
"""

from __future__ import annotations

import contextlib
from typing import Any

from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage
from nats.aio.msg import Msg

from pressroom_contracts import subjects, topology
from pressroom_contracts.events import EVENT_CLASSES, Envelope, Producer, Stage
from pressroom_contracts.queries import JobStatus
from pressroom_runtime.broker import Publisher
from pressroom_runtime.consumer import Consumer, Delivery, StageContext, bind_consumer
from pressroom_runtime.deadletter import Keeper
from pressroom_runtime.jobstates import JobStates
from pressroom_runtime.logs import get_logger
from pressroom_runtime.outage import outlast
from pressroom_runtime.pull import SlotPuller

from . import queries
from .recorder import Emit, Recorder
from .store import Store, translated_errors
from .sweep import Sweeper

QUEUE = "persistence"  # one replica answers each query
log = get_logger(__name__)


class Persistence:
    """The service's moving parts, started once the broker is connected and stopped before it closes."""

    def __init__(
        self,
        broker: NatsBroker,
        *,
        store: Store,
        publisher: Publisher,
        producer: Producer,
        delivery: Delivery,
        default_budget_usd: float | None,
        stale_after: float,
        sweep_interval: float,
    ) -> None:
        self.broker = broker
        self.publisher = publisher
        self.producer = producer
        self.delivery = delivery
        self._jobs: JobStates | None = None
        self.recorder = Recorder(
            store, default_budget_usd=default_budget_usd, was_requested=self._was_requested, sync=self._sync
        )

        async def on_event(event: Envelope, ctx: StageContext) -> None:
            with translated_errors():
                await self.recorder.record(event, ctx.emit)

        # Persistence is no stage: it records events of stopped jobs too (check_job=False). A message it
        # gives up on fails its job, as stage `job`.
        self.events: Consumer = bind_consumer(
            broker,
            consumer=topology.PERSISTENCE,
            accepts=EVENT_CLASSES,
            handler=on_event,
            publisher=publisher,
            producer=producer,
            stage=Stage.job,
            delivery=delivery,
            check_job=False,
        )
        self.sweeper = Sweeper(
            store, self.recorder, self._emitter, stale_after=stale_after, interval=sweep_interval
        )
        self._keeper: SlotPuller | None = None

    async def jobs(self) -> JobStates:
        if self._jobs is None:
            self._jobs = JobStates(await self.broker.connect())
        return self._jobs

    async def _was_requested(self, job_id: str) -> bool:
        return await (await self.jobs()).requested(job_id)

    async def _sync(self, job_id: str, status: str, owner: str | None) -> None:
        await (await self.jobs()).advance(job_id, JobStatus(status), owner or "anonymous")

    def _emitter(self, job_id: str) -> Emit:
        return StageContext(self.publisher, self.producer, None, job_id, None, 1).emit

    async def start(self) -> None:
        nc = await self.broker.connect()
        # Every status change is a compare-and-set on the job's entry: from memory, one round trip.
        await (await self.jobs()).follow()
        await self.events.start()
        keeper = Keeper(nc, self.publisher.publish, self.producer)
        base, cap = self.delivery.retry_base, self.delivery.retry_max

        async def on_advisory(msg: Msg) -> None:
            try:
                await outlast(lambda: keeper.handle(msg), base=base, cap=cap)
                await outlast(msg.ack, base=base, cap=cap)
            except Exception:
                log.exception("advisory not handled; it will be delivered again")
                with contextlib.suppress(Exception):
                    await msg.nak(delay=self.delivery.retry_max)

        self._keeper = SlotPuller(
            nc,
            stream=topology.DEADLETTER.stream,
            durable=topology.DEADLETTER.durable,
            slots=4,
            handle=on_advisory,
            ack_wait=topology.DEADLETTER.ack_wait_seconds,
            lag_interval=self.delivery.lag_interval,
        )
        await self._keeper.start()
        self.sweeper.start(nc)

    async def stop(self) -> None:
        await self.sweeper.stop()
        if self._keeper is not None:
            await self._keeper.stop(self.delivery.drain)
        await self.events.stop()
        if self._jobs is not None:
            await self._jobs.close()


def register(
    broker: NatsBroker,
    *,
    store: Store,
    publisher: Publisher,
    producer: Producer,
    delivery: Delivery | None = None,
    query_workers: int = 8,
    default_budget_usd: float | None = None,
    stale_after: float = 900.0,
    sweep_interval: float = 60.0,
) -> Persistence:
    persistence = Persistence(
        broker,
        store=store,
        publisher=publisher,
        producer=producer,
        delivery=delivery or Delivery(),
        default_budget_usd=default_budget_usd,
        stale_after=stale_after,
        sweep_interval=sweep_interval,
    )

    # The raw message, not a typed body: a malformed query must get an error reply, not a dropped request.
    @broker.subscriber(subjects.QUERY_JOB, queue=QUEUE, max_workers=query_workers, title="query.job")
    async def query_job(msg: NatsMessage) -> dict[str, Any]:
        return await queries.answer_job(store, msg.body)

    @broker.subscriber(subjects.QUERY_JOBS, queue=QUEUE, max_workers=query_workers, title="query.jobs")
    async def query_jobs(msg: NatsMessage) -> dict[str, Any]:
        return await queries.answer_jobs(store, msg.body)

    return persistence
