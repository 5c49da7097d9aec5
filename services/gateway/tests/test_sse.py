"""SSE `GET /v1/jobs/{id}/events` over real HTTP (uvicorn) against a real nats-server: replay then live,
`Last-Event-ID` resume exactly once, the end after the terminal event, token in a header or `?token=`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

READ_TIMEOUT = 5.0


@dataclass
class SseEvent:
    id: str | None
    event: str
    data: Any

    @property
    def seq(self) -> int:
        assert self.id is not None, self
        return int(self.id)


class SseStream:
    """Reads `text/event-stream` as EventSource does: fields until a blank line; comments skipped."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self, timeout: float = READ_TIMEOUT) -> SseEvent | None:
        """The next event, or None when the server ended the stream."""
        fields: dict[str, list[str]] = {}
        async with asyncio.timeout(timeout):
            async for line in self._lines:
                if line == "":
                    if "data" in fields:
                        return SseEvent(
                            id=fields.get("id", [None])[-1],
                            event=fields.get("event", ["message"])[-1],
                            data=json.loads("\n".join(fields["data"])),
                        )
                    fields.clear()
                    continue
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                fields.setdefault(name, []).append(value.removeprefix(" "))
        return None

    async def events(self, count: int) -> list[SseEvent]:
        """The next `count` stored events (deltas skipped)."""
        found: list[SseEvent] = []
        while len(found) < count:
            event = await self.next()
            assert event is not None, f"stream ended after {found}"
            if event.event != "delta":
                found.append(event)
        return found

    async def rest(self) -> list[SseEvent]:
        """Everything until the server ends the stream."""
        found = []
        while (event := await self.next()) is not None:
            found.append(event)
        return found


@asynccontextmanager
async def sse(
    gateway: Any,
    job_id: str,
    *,
    token: str | None = None,
    query_token: bool = False,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> AsyncIterator[SseStream]:
    token = gateway.token if token is None else token
    headers = dict(headers or {})
    params = dict(params or {})
    if query_token:
        params["token"] = token
    else:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        httpx.AsyncClient(base_url=gateway.http_url, timeout=httpx.Timeout(10, read=30)) as client,
        client.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers, params=params) as response,
    ):
        yield SseStream(response)


def types(events: list[SseEvent]) -> list[str]:
    return [e.event for e in events]


async def test_replays_stored_events_then_live_ones_and_ends_after_the_terminal_event(gateway, pipeline):
    job, first = await pipeline.new_job()
    stored = [await pipeline.publish(e) for e in (job.progress(1), job.research())]

    async with sse(gateway, job.job_id) as stream:
        assert stream.response.status_code == 200
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        replayed = await stream.events(3)
        assert [e.seq for e in replayed] == [first, *stored]
        assert types(replayed) == ["job.requested", "stage.progress", "research.completed"]
        # data is the stored envelope
        assert replayed[0].data["job_id"] == job.job_id
        assert replayed[0].data["type"] == "job.requested"
        assert replayed[0].data["data"]["owner"] == gateway.client_id

        # Live: a delta (no id), then stored events, then the end.
        await pipeline.delta(job.job_id, "blog", 0, "Hello ")
        delta = await stream.next()
        assert delta is not None and delta.event == "delta" and delta.id is None
        assert delta.data == {
            "type": "delta",
            "job_id": job.job_id,
            "stage": "blog",
            "offset": 0,
            "text": "Hello ",
        }
        live = [await pipeline.publish(e) for e in (job.blog(), job.job_completed())]
        rest = await stream.rest()
        assert [e.seq for e in rest] == live
        assert types(rest) == ["blog.completed", "job.completed"]


async def test_last_event_id_resumes_exactly_once(gateway, pipeline):
    job, first = await pipeline.new_job()
    script = [job.progress(1), job.research(), job.progress(1, stage="blog"), job.blog()]
    seqs = [first] + [await pipeline.publish(e) for e in script]

    async with sse(gateway, job.job_id) as stream:
        seen = await stream.events(3)
    assert [e.seq for e in seen] == seqs[:3]

    # Missed while disconnected: the rest of the script and more.
    later = [await pipeline.publish(e) for e in (job.social("linkedin"), job.social("x"), job.image())]
    async with sse(gateway, job.job_id, headers={"Last-Event-ID": seen[-1].id or ""}) as stream:
        resumed = await stream.events(len(seqs) - 3 + len(later))
        assert [e.seq for e in resumed] == seqs[3:] + later
        # Then live, still exactly once.
        end = await pipeline.publish(job.job_completed())
        rest = await stream.rest()
    assert [e.seq for e in rest] == [end]
    every = [e.seq for e in seen + resumed + rest]
    assert every == sorted(set(every))


async def test_after_seq_query_and_last_event_id_header_wins(gateway, pipeline):
    job, first = await pipeline.new_job()
    second = await pipeline.publish(job.research())
    third = await pipeline.publish(job.blog())
    async with sse(gateway, job.job_id, params={"after_seq": str(first)}) as stream:
        assert [e.seq for e in await stream.events(2)] == [second, third]
    async with sse(
        gateway, job.job_id, params={"after_seq": str(first)}, headers={"Last-Event-ID": str(second)}
    ) as stream:
        assert [e.seq for e in await stream.events(1)] == [third]


async def test_a_finished_job_replays_to_its_end_and_then_says_no_content(gateway, pipeline):
    job, _ = await pipeline.new_job()
    await pipeline.publish(job.research())
    end = await pipeline.publish(job.job_cancelled())
    async with sse(gateway, job.job_id) as stream:
        events = await stream.rest()
    assert types(events) == ["job.requested", "research.completed", "job.cancelled"]

    # EventSource reconnects after the end with the last id: nothing more, 204 stops it.
    async with sse(gateway, job.job_id, headers={"Last-Event-ID": str(end)}) as stream:
        assert stream.response.status_code == 204

    # Something stored after the end (an edit) is delivered on the next resume, then the stream ends.
    edited = await pipeline.publish(job.blog_edited())
    async with sse(gateway, job.job_id, headers={"Last-Event-ID": str(end)}) as stream:
        assert stream.response.status_code == 200
        after = await stream.rest()
    assert [(e.seq, e.event) for e in after] == [(edited, "blog.edited")]


async def test_token_in_the_query_string_for_event_source(gateway, pipeline):
    job, first = await pipeline.new_job()
    async with sse(gateway, job.job_id, query_token=True) as stream:
        assert stream.response.status_code == 200
        assert [e.seq for e in await stream.events(1)] == [first]


async def test_refusals(gateway, pipeline, other_key):
    job, _ = await pipeline.new_job()
    async with httpx.AsyncClient(base_url=gateway.http_url, timeout=5) as client:
        response = await client.get(f"/v1/jobs/{job.job_id}/events")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthenticated"

        other = {"Authorization": f"Bearer {other_key.token}"}
        response = await client.get(f"/v1/jobs/{job.job_id}/events", headers=other)
        assert response.status_code == 404
        assert response.json() == {"error": {"code": "not_found", "message": f"no job {job.job_id}"}}
        response = await client.get(f"/v1/jobs/{job.job_id}/events", params={"token": other_key.token})
        assert response.status_code == 404

        mine = {"Authorization": f"Bearer {gateway.token}"}
        for missing in ("0190a1b2-no-such-job", "not.a.job"):
            response = await client.get(f"/v1/jobs/{missing}/events", headers=mine)
            assert response.status_code == 404, missing

        response = await client.get(
            f"/v1/jobs/{job.job_id}/events", headers={**mine, "Last-Event-ID": "yesterday"}
        )
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_request"


async def test_a_client_going_away_releases_its_subscriptions(gateway, pipeline, eventually):
    await eventually(lambda: gateway.feed_subscriptions() == 0, timeout=10, interval=0.05)
    job, _ = await pipeline.new_job()
    async with sse(gateway, job.job_id) as stream:
        await stream.events(1)
        assert gateway.feed_subscriptions() == 2  # the stored events and the live deltas
    await eventually(lambda: gateway.feed_subscriptions() == 0, timeout=10, interval=0.05)


async def test_event_streams_count_in_the_clients_connections(
    gateway_factory, pipeline, ws_connect, eventually
):
    """An open event stream holds one of the client's MAX_CONNECTIONS, as a WebSocket does."""
    job, first = await pipeline.new_job()
    async with gateway_factory(max_connections=2) as gw:
        async with sse(gw, job.job_id) as one, ws_connect(gw) as two:
            assert [e.seq for e in await one.events(1)] == [first]
            await two.barrier()
            async with httpx.AsyncClient(base_url=gw.http_url, timeout=5) as client:
                mine = {"Authorization": f"Bearer {gw.token}"}
                refused = await client.get(f"/v1/jobs/{job.job_id}/events", headers=mine)
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "rate_limited"
            assert "Retry-After" in refused.headers
        # Both closed: the slots are free again (the stream's once its response is gone).

        async def streams() -> bool:
            async with sse(gw, job.job_id) as again:
                return again.response.status_code == 200

        await eventually(streams, timeout=10, interval=0.1)
