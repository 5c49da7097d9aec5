"""Server-Sent Events of one job, GET /v1/jobs/{id}/events, for clients without WebSockets.

The same JobFeed as `/v1/ws`: the job's stored events replayed from the stream, then live ones, each as

    id: <stream seq>
    event: <event type>
    data: <the stored envelope, JSON>

and live token deltas as `event: delta` (no id: they are not stored, so a resume does not count them).
A reconnecting EventSource sends `Last-Event-ID`; the feed starts after that sequence, so nothing is sent
twice and nothing is missed (or, when the stream no longer holds what was missed, `event: resync` with
the job's remaining events). The stream ends after the job's terminal event (job.completed, job.failed,
job.cancelled); a client resuming after it gets what came later (a regeneration, an edit) and the end,
or 204 No Content when there is nothing, which tells EventSource to stop reconnecting.

EventSource cannot set headers: the token may be given as `?token=` (auth.request_token).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Header, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent
from nats.js.errors import NotFoundError

from pressroom_contracts import subjects
from pressroom_contracts.events import TERMINAL_TYPES
from pressroom_contracts.protocol import DeltaFrame, EventFrame, Frame, ResyncFrame
from pressroom_runtime.logs import get_logger

from .api import (
    ApiError,
    ApiRoute,
    BusDep,
    CurrentClient,
    JobId,
    error_responses,
    requested_event,
    require_owned,
)
from .bus import Bus
from .fanout import JobFeed, decode_event
from .outbox import Outbox

log = get_logger(__name__)

router = APIRouter(route_class=ApiRoute, tags=["events"])


@dataclass(frozen=True)
class Plan:
    job_id: str
    after_seq: int
    # True when the client already saw the job's end (or its history expired from the stream): send
    # what is stored after after_seq and close, instead of waiting for a terminal event.
    finite: bool


def _seq(value: str | None, name: str) -> int | None:
    if value is None or value.strip() == "":
        return None
    try:
        seq = int(value.strip())
    except ValueError:
        seq = -1
    if seq < 0:
        raise ApiError(422, "invalid_request", f"{name}: must be a stream sequence (an integer ≥ 0)")
    return seq


async def _last_terminal(bus: Bus, job_id: str) -> int | None:
    found = []
    for event_type in TERMINAL_TYPES:
        try:
            msg = await bus.js.get_last_msg(subjects.STREAM, subjects.content(job_id, event_type))
        except NotFoundError:
            continue
        if msg.seq is not None:
            found.append(msg.seq)
    return max(found, default=None)


async def _next_stored(bus: Bus, job_id: str, from_seq: int) -> tuple[int, bytes] | None:
    """The job's first stored event at or after `from_seq`: (seq, data), or None."""
    try:
        msg = await bus.js.get_msg(
            subjects.STREAM, seq=from_seq, subject=subjects.content_of_job(job_id), next=True
        )
    except NotFoundError:
        return None
    return (msg.seq or from_seq), (msg.data or b"")


async def plan(
    job_id: JobId,
    client: CurrentClient,
    bus: BusDep,
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", description="Resume after this stream sequence (sent by EventSource)."),
    ] = None,
    after_seq: Annotated[
        str | None,
        Query(description="Resume after this stream sequence; Last-Event-ID wins when both are given."),
    ] = None,
) -> Plan:
    """Everything that can refuse the request, decided before the response starts."""
    after = _seq(last_event_id, "Last-Event-ID")
    if after is None:
        after = _seq(after_seq, "after_seq") or 0
    await require_owned(job_id, client, bus)
    if await requested_event(bus, job_id) is not None:
        terminal = await _last_terminal(bus, job_id)
        finite = terminal is not None and terminal <= after
    else:  # an old job whose start expired from the stream: whatever is left, then the end
        finite = True
    if finite and await _next_stored(bus, job_id, after + 1) is None:
        raise ApiError(204, "no_content", "nothing after Last-Event-ID: the job has ended")
    return Plan(job_id=job_id, after_seq=after, finite=finite)


def _sse(frame: Frame) -> ServerSentEvent:
    if isinstance(frame, EventFrame):
        return ServerSentEvent(
            id=str(frame.seq),
            event=str(frame.event.get("type", "event")),
            raw_data=json.dumps(frame.event, separators=(",", ":"), ensure_ascii=False),
        )
    if isinstance(frame, DeltaFrame):
        return ServerSentEvent(event="delta", raw_data=frame.model_dump_json())
    if isinstance(frame, ResyncFrame):
        return ServerSentEvent(id=str(frame.seq), event="resync", raw_data=frame.model_dump_json())
    return ServerSentEvent(event=str(getattr(frame, "type", "message")), raw_data=frame.model_dump_json())


async def _next(outbox: Outbox[Frame]) -> Frame | None:
    """The next frame, or None once the outbox overflowed (the client is not keeping up) and what it
    holds was sent: the stream then ends and the client resumes from its Last-Event-ID."""
    if outbox.qsize():
        return await outbox.get()
    if outbox.overflowed.is_set():
        return None
    getter = asyncio.ensure_future(outbox.get())
    overflow = asyncio.ensure_future(outbox.overflowed.wait())
    try:
        await asyncio.wait({getter, overflow}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (getter, overflow):
            if not task.done():
                task.cancel()
    if getter.done() and not getter.cancelled():
        return getter.result()
    return await _next(outbox)


async def _finite(bus: Bus, job_id: str, after_seq: int) -> AsyncIterator[ServerSentEvent]:
    seq = after_seq + 1
    while (found := await _next_stored(bus, job_id, seq)) is not None:
        stored_seq, data = found
        event = decode_event(data)
        if event is not None:
            yield _sse(EventFrame(job_id=job_id, seq=stored_seq, event=event))
        seq = stored_seq + 1


@router.get(
    "/v1/jobs/{job_id}/events",
    response_class=EventSourceResponse,
    summary="Follow a job (Server-Sent Events)",
    description="The job's stored events (replayed, then live; `id:` is the stream sequence, `event:` "
    "the event type, `data:` the envelope) and live `delta` events, ending after the job's terminal "
    "event. Honours `Last-Event-ID`. The bearer token may be given as `?token=` (EventSource cannot "
    "set headers).",
    responses={
        204: {"description": "The job ended and nothing came after Last-Event-ID: stop reconnecting."},
        **error_responses(401, 404, 422, 503),
    },
)
async def job_events(stream: Annotated[Plan, Depends(plan)], bus: BusDep) -> AsyncIterator[ServerSentEvent]:
    if stream.finite:
        async for item in _finite(bus, stream.job_id, stream.after_seq):
            yield item
        return
    outbox: Outbox[Frame] = Outbox(bus.settings.send_queue)
    feed = JobFeed(bus.nc, stream.job_id, outbox.put)
    try:
        await feed.start(stream.after_seq)
        while (frame := await _next(outbox)) is not None:
            yield _sse(frame)
            if isinstance(frame, EventFrame) and frame.event.get("type") in TERMINAL_TYPES:
                return
        log.info("sse client too slow, ending its stream", job_id=stream.job_id, seq=feed.mark)
    finally:
        # Also when the client went away (the response is cancelled): free the consumer regardless.
        with anyio.CancelScope(shield=True):
            await feed.stop()
