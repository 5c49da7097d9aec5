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
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent

from pressroom_contracts.events import TERMINAL_TYPES
from pressroom_contracts.protocol import MAX_SEQ
from pressroom_runtime.logs import get_logger

from .deps import CurrentClient, JobId, ServicesDep
from .errors import REVOKED, REVOKED_MESSAGE, GatewayError, error_responses
from .fanout import Item, event_item
from .jobs import Follow
from .outbox import Outbox
from .stream import EventStore

log = get_logger(__name__)

router = APIRouter(tags=["events"])


class NoContent(GatewayError):
    """The job ended and nothing came after Last-Event-ID: 204 tells EventSource to stop reconnecting."""

    status = 204
    code = "no_content"


def _seq(value: str | None, name: str) -> int | None:
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    seq = int(text) if text.isascii() and text.isdigit() and len(text) <= 19 else -1
    if not 0 <= seq <= MAX_SEQ:
        raise GatewayError(f"{name}: must be a stream sequence (an integer from 0 to {MAX_SEQ})")
    return seq


async def follow(
    job_id: JobId,
    client: CurrentClient,
    services: ServicesDep,
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", description="Resume after this stream sequence (sent by EventSource)."),
    ] = None,
    after_seq: Annotated[
        str | None,
        Query(description="Resume after this stream sequence; Last-Event-ID wins when both are given."),
    ] = None,
) -> tuple[str, Follow]:
    """Everything that can refuse the request, decided before the response starts."""
    after = _seq(last_event_id, "Last-Event-ID")
    if after is None:
        after = _seq(after_seq, "after_seq") or 0
    plan = await services.jobs.follow(client, job_id, after)
    if plan.exhausted:
        raise NoContent("nothing after Last-Event-ID: the job has ended")
    return job_id, plan


async def stream_slot(client: CurrentClient, services: ServicesDep) -> AsyncIterator[None]:
    """One of the client's PRESSROOM_GATEWAY_MAX_CONNECTIONS, held while its event stream is open (as a
    WebSocket holds one); 429 `rate_limited` before the stream starts when all are in use."""
    async with services.limiter.connection_slot(client):
        yield


def _sse(item: Item) -> ServerSentEvent:
    if item.kind == "event":
        return ServerSentEvent(id=str(item.seq), event=item.event_type or "event", raw_data=item.envelope)
    if item.kind == "resync":
        return ServerSentEvent(id=str(item.seq), event="resync", raw_data=item.frame)
    return ServerSentEvent(event="delta", raw_data=item.frame)


async def _next(outbox: Outbox[Item | str]) -> Item | str | None:
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


async def _finite(events: EventStore, job_id: str, after_seq: int) -> AsyncIterator[ServerSentEvent]:
    seq = after_seq + 1
    while (stored := await events.next_of_job(job_id, seq)) is not None:
        item = event_item(job_id, stored.seq, stored.data)
        if item is not None:
            yield _sse(item)
        seq = stored.seq + 1


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
        **error_responses(401, 404, 422, 429, 503),
    },
)
async def job_events(
    followed: Annotated[tuple[str, Follow], Depends(follow)],
    client: CurrentClient,
    services: ServicesDep,
    _slot: Annotated[None, Depends(stream_slot, scope="request")],
) -> AsyncIterator[ServerSentEvent]:
    job_id, plan = followed
    if plan.finite:
        async for stored in _finite(services.events, job_id, plan.after_seq):
            yield stored
        return
    outbox: Outbox[Item | str] = Outbox(services.settings.send_queue)
    watch = await services.hub.watch(job_id, outbox.offer, after_seq=plan.after_seq)
    # A revoked key ends the stream with an `error` event saying so.
    forget = services.auth.on_revoke(client, lambda: outbox.offer(REVOKED))
    try:
        while (item := await _next(outbox)) is not None:
            if isinstance(item, str):
                body = {"code": item, "message": REVOKED_MESSAGE}
                yield ServerSentEvent(event="error", raw_data=json.dumps(body))
                return
            yield _sse(item)
            if item.event_type in TERMINAL_TYPES:
                return
        log.info("sse client too slow, ending its stream", job_id=job_id, seq=watch.mark)
    finally:
        # Also when the client went away (the response is cancelled).
        forget()
        services.hub.unwatch(watch)
