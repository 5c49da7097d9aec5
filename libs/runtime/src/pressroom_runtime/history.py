"""Reads back what a job already has on the stream.

A stage checks this before paying for work again: when a redelivered input already produced its
result (the process died after publishing but before acking), the result is re-published (the stream
drops the duplicate) and the expensive call is skipped.
"""

from __future__ import annotations

from nats.aio.client import Client
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError

from pressroom_contracts import subjects
from pressroom_contracts.events import Envelope, parse_event


async def recorded(nc: Client, job_id: str, event_type: str, timeout: float = 5.0) -> list[Envelope]:
    """Every stored event of one type for one job, oldest first."""
    js = nc.jetstream()
    subject = subjects.content(job_id, event_type)
    try:
        last = await js.get_last_msg(subjects.STREAM, subject)  # cheap "is there any?"
    except NotFoundError:
        return []
    sub = await js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    events: list[Envelope] = []
    try:
        while True:
            msg = await sub.next_msg(timeout=timeout)
            events.append(parse_event(msg.data))
            if msg.metadata.sequence.stream >= (last.seq or 0):
                return events
    finally:
        await sub.unsubscribe()
