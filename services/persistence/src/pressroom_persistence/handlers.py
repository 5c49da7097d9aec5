"""What persistence listens to and answers. Thin: the logic is in recorder.py and queries.py.

content.>      durable `persistence` (every stored event)  → records it; may publish job.completed / job.failed /
                                                             job.cancelled
query.job      request/reply, queue group `persistence`     → one job, its latest artifacts and their versions
query.jobs     request/reply, queue group `persistence`     → a page of jobs, newest first
"""

from __future__ import annotations

from typing import Any

from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage

from pressroom_contracts import subjects, topology
from pressroom_contracts.events import EVENT_CLASSES, Envelope, Producer
from pressroom_runtime.broker import Publisher
from pressroom_runtime.consumer import StageContext, bind_consumer

from . import queries
from .recorder import Recorder
from .store import Store

QUEUE = "persistence"  # one replica answers each query


def register(
    broker: NatsBroker,
    *,
    store: Store,
    publisher: Publisher,
    producer: Producer,
    query_workers: int = 8,
    default_budget_usd: float | None = None,
) -> None:
    recorder = Recorder(store, default_budget_usd=default_budget_usd)

    async def on_event(event: Envelope, ctx: StageContext) -> None:
        await recorder.record(event, ctx.emit)

    # stage=None: persistence is no stage, so a message it gives up on is not announced as stage.failed.
    bind_consumer(
        broker,
        consumer=topology.PERSISTENCE,
        accepts=EVENT_CLASSES,
        handler=on_event,
        publisher=publisher,
        producer=producer,
        stage=None,
    )

    # The raw message, not a typed body: a malformed query must get an error reply, not a dropped request.
    @broker.subscriber(subjects.QUERY_JOB, queue=QUEUE, max_workers=query_workers, title="query.job")
    async def query_job(msg: NatsMessage) -> dict[str, Any]:
        return await queries.answer_job(store, msg.body)

    @broker.subscriber(subjects.QUERY_JOBS, queue=QUEUE, max_workers=query_workers, title="query.jobs")
    async def query_jobs(msg: NatsMessage) -> dict[str, Any]:
        return await queries.answer_jobs(store, msg.body)
