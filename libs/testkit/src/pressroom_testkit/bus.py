"""The test's own NATS connection: publishes stored events as the stages would, reads back what was
stored, waits for a durable consumer to settle and asks request/reply queries."""

from __future__ import annotations

import json
from typing import Any

from nats.aio.client import Client

from pressroom_contracts import subjects
from pressroom_contracts.events import TERMINAL_TYPES, Envelope, JobRequestedEvent, encode_event
from pressroom_contracts.queries import JobStatus
from pressroom_runtime.history import recorded
from pressroom_runtime.jobstates import JobStates

from .waiting import eventually


class TestBus:
    """`TestBus(nc, durable="social")`: `durable` is the consumer `settled()` waits for."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, nc: Client, durable: str | None = None) -> None:
        self.nc = nc
        self.durable = durable
        self._tracked: set[str] = set()  # jobs whose state entry this bus made sure of

    async def publish(self, event: Envelope, *, dedup: bool = True, requested: bool = True) -> int:
        """Stores the event and returns its stream sequence. dedup=False stores every copy, so the
        consumer gets the event twice (as after a redelivery).

        The job-state bucket is kept as the gateway and persistence would keep it: a job.requested
        creates the job's entry, job.completed / job.failed / job.cancelled move it forward, any other
        event of a job without an entry gives it one. requested=False leaves the bucket alone: an event
        of a job nobody requested."""
        if requested:
            await self._track(event)
        headers = {"Nats-Msg-Id": event.dedup_key()} if dedup else None
        ack = await self.nc.jetstream().publish(
            subjects.content(event.job_id, event.type),
            encode_event(event),
            headers=headers,
            stream=subjects.STREAM,
        )
        return ack.seq

    async def _track(self, event: Envelope) -> None:
        jobs = JobStates(self.nc)
        owner = event.data.owner if isinstance(event, JobRequestedEvent) else None
        if event.type in TERMINAL_TYPES:
            await jobs.advance(event.job_id, JobStatus(event.type.removeprefix("job.")), owner or "anonymous")
        elif event.job_id not in self._tracked:
            await jobs.create(event.job_id, owner or "anonymous")
        self._tracked.add(event.job_id)

    async def publish_raw(self, subject: str, data: bytes) -> int:
        """Stores any bytes (a malformed message, say) and returns the stream sequence."""
        ack = await self.nc.jetstream().publish(subject, data, stream=subjects.STREAM)
        return ack.seq

    async def stored(self, job_id: str, event_type: str) -> list[Envelope]:
        return await recorded(self.nc, job_id, event_type)

    async def stored_count(self, job_id: str, event_type: str) -> int:
        """How many messages the stream holds on the subject (copies and malformed ones included)."""
        subject = subjects.content(job_id, event_type)
        info = await self.nc.jetstream().stream_info(subjects.STREAM, subjects_filter=subject)
        return (info.state.subjects or {}).get(subject, 0)

    async def wait_for(
        self, job_id: str, event_type: str, count: int = 1, timeout: float = 20.0
    ) -> list[Envelope]:
        """The stored events of the type once there are at least `count` of them."""

        async def at_least() -> list[Envelope]:
            events = await self.stored(job_id, event_type)
            return events if len(events) >= count else []

        return await eventually(at_least, timeout=timeout)

    async def first(self, job_id: str, *event_types: str, timeout: float = 20.0) -> Envelope:
        """The first stored event of any of these types (in the order given), once there is one."""

        async def found() -> Envelope | None:
            for event_type in event_types:
                if events := await self.stored(job_id, event_type):
                    return events[0]
            return None

        return await eventually(found, timeout=timeout)

    async def acked(self, seq: int, durable: str | None = None, timeout: float = 20.0) -> None:
        """Waits until `durable` (by default this bus's) settled every message up to stream sequence
        `seq`: a positive signal that it handled what was published, with nothing left to redeliver."""
        name = durable or self.durable
        if name is None:
            raise TypeError("acked() needs a durable")
        js = self.nc.jetstream()

        async def done() -> bool:
            info = await js.consumer_info(subjects.STREAM, name)
            return (info.ack_floor.stream_seq or 0) >= seq

        await eventually(done, timeout=timeout)

    async def settled(self, seq: int = 1, timeout: float = 20.0) -> None:
        """Waits until the durable acknowledged (or terminated) everything up to stream sequence `seq`
        (by default: something at all) and has nothing pending or unacknowledged."""
        if self.durable is None:
            raise TypeError("settled() needs TestBus(nc, durable=…)")
        js = self.nc.jetstream()
        durable = self.durable

        async def done() -> bool:
            info = await js.consumer_info(subjects.STREAM, durable)
            acked = info.ack_floor.stream_seq or 0
            return acked >= seq and not info.num_pending and not info.num_ack_pending

        await eventually(done, timeout=timeout)

    async def ask(self, subject: str, body: Any, timeout: float = 5.0) -> dict[str, Any]:
        """A request/reply query: `body` is JSON-encoded unless it is bytes already."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        reply = await self.nc.request(subject, data, timeout=timeout)
        return json.loads(reply.data)
