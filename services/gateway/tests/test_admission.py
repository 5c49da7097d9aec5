"""The same request gets the same answer on every transport: each admission rule run through REST,
`/v1/ws` and `/content` (where the transport can ask for it) against a real nats-server.

`/content` can only start jobs with default options: the budget (regenerate) and cancel rules do not
apply to it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from pressroom_contracts import subjects
from pressroom_contracts.jobs import JobRequest

from .conftest import Gateway, persistence_answering

Answer = tuple[str, str]  # ("accepted", job id) or (error code, message)


async def rest(gw: Gateway, method: str, path: str, body: dict[str, Any] | None = None) -> Answer:
    headers = {"Authorization": f"Bearer {gw.token}"}
    async with httpx.AsyncClient(base_url=gw.http_url, headers=headers, timeout=10) as http:
        response = await http.request(method, path, json=body)
    if response.status_code == 202:
        return "accepted", response.json()["job_id"]
    error = response.json()["error"]
    return error["code"], error["message"]


async def ws(gw: Gateway, ws_connect: Callable[..., Any], frame: dict[str, Any]) -> Answer:
    async with ws_connect(gw) as client:
        await client.send({**frame, "ref": "r"})
        reply = await client.recv()
    assert reply["ref"] == "r", reply
    if reply["type"] == "accepted":
        return "accepted", reply["job_id"]
    assert reply["type"] == "error", reply
    return reply["code"], reply["message"]


async def content(gw: Gateway, ws_connect: Callable[..., Any], topic: str) -> Answer:
    async with ws_connect(gw, "/content") as client:
        await client.send({"topic": topic, "research": False})
        reply = await client.recv()
    if reply["type"] == "progress_event":
        return "accepted", reply["payload"]
    code, _, message = reply["payload"].partition(": ")
    return code, message


Start = Callable[[Gateway, str], Awaitable[Answer]]


@pytest.fixture(params=["rest", "ws", "content"])
def start(request: pytest.FixtureRequest, ws_connect: Callable[..., Any]) -> Start:
    """Starts a job with `topic` over one transport; answers as ("accepted", …) or (code, message)."""
    transport = request.param

    async def _start(gw: Gateway, topic: str) -> Answer:
        if transport == "rest":
            return await rest(gw, "POST", "/v1/jobs", {"topic": topic, "research": False})
        if transport == "ws":
            return await ws(gw, ws_connect, {"type": "start", "request": {"topic": topic, "research": False}})
        return await content(gw, ws_connect, topic)

    return _start


async def test_moderation_then_quota_the_same_on_every_transport(gateway_factory, start):
    async with gateway_factory(job_rate="1/minute", blocklist="forbidden fruit") as gw:
        refused = await start(gw, "The forbidden   fruit")
        assert refused == ("topic_refused", "the request contains a blocked term: 'forbidden fruit'")
        # A refused topic costs no quota: the one job of the minute is still there.
        assert (await start(gw, "Apples in autumn"))[0] == "accepted"
        code, message = await start(gw, "Pears in autumn")
        assert code == "rate_limited"
        assert message.startswith("too many jobs started (limit 1 per 1 minute); try again in ")


async def test_invalid_request_is_refused_naming_the_field_on_every_transport(gateway, start):
    code, message = await start(gateway, "ab")
    assert code == "invalid_request"
    assert "topic" in message and "3 to 500 characters" in message


# ---- rules on an existing job: REST and /v1/ws ---------------------------------------------------------


async def _over_rest(gw: Gateway, _ws: Any, job_id: str, action: str, body: dict[str, Any]) -> Answer:
    return await rest(gw, "POST", f"/v1/jobs/{job_id}/{action}", body)


async def _over_ws(gw: Gateway, ws_connect: Any, job_id: str, action: str, body: dict[str, Any]) -> Answer:
    return await ws(gw, ws_connect, {"type": action, "job_id": job_id, **body})


TRANSPORTS = pytest.mark.parametrize("act", [_over_rest, _over_ws], ids=["rest", "ws"])


@TRANSPORTS
async def test_cancelling_a_finished_job_is_refused(gateway, ws_connect, pipeline, act):
    job, _ = await pipeline.new_job()
    await pipeline.publish(job.job_completed())
    assert await act(gateway, ws_connect, job.job_id, "cancel", {}) == (
        "not_active",
        "the job already finished (job.completed)",
    )
    running, _ = await pipeline.new_job()
    assert await act(gateway, ws_connect, running.job_id, "cancel", {}) == ("accepted", running.job_id)
    stored = await pipeline.nc.jetstream().get_last_msg(
        subjects.STREAM, subjects.content(running.job_id, "cancel.requested")
    )
    assert json.loads(stored.data)["data"]["requested_by"] == gateway.client_id  # who asked, on both


@TRANSPORTS
async def test_a_regeneration_past_the_budget_is_refused(gateway, ws_connect, pipeline, act):
    job, _ = await pipeline.new_job(JobRequest(topic="Costly topic", budget_usd=0.01))
    await pipeline.publish(job.usage("draft", cost=0.004))
    await pipeline.publish(job.blog())
    # 0.004 spent + about 0.004 for another blog fits in 0.01.
    assert await act(gateway, ws_connect, job.job_id, "regenerate", {"stage": "blog"}) == (
        "accepted",
        job.job_id,
    )
    await pipeline.publish(job.usage("redraft", cost=0.004))
    await pipeline.publish(job.blog_regenerated(version=2))
    # 0.008 spent + about 0.004 does not.
    assert await act(gateway, ws_connect, job.job_id, "regenerate", {"stage": "blog"}) == (
        "budget_exceeded",
        "the job has spent $0.0080 of its $0.0100 budget; regenerating the blog would cost about "
        "$0.0040 more",
    )


@TRANSPORTS
async def test_regenerations_count_in_the_job_quota(gateway_factory, ws_connect, pipeline, act):
    async with gateway_factory(job_rate="1/minute") as gw:
        job, _ = await pipeline.new_job()
        await pipeline.publish(job.blog())
        assert (await act(gw, ws_connect, job.job_id, "regenerate", {"stage": "blog"}))[0] == "accepted"
        code, _ = await act(gw, ws_connect, job.job_id, "regenerate", {"stage": "blog"})
        assert code == "rate_limited"


@TRANSPORTS
async def test_someone_elses_job_is_not_found(gateway, ws_connect, pipeline, other_key, act):
    job, _ = await pipeline.new_job(owner=other_key.client_id)
    for action, body in (("cancel", {}), ("regenerate", {"stage": "blog"})):
        assert await act(gateway, ws_connect, job.job_id, action, body) == (
            "not_found",
            f"no job {job.job_id}",
        )


# ---- readers skip what they cannot parse ----------------------------------------------------------------


async def test_garbage_on_the_stream_is_skipped_by_an_edit(gateway, pipeline):
    job, _ = await pipeline.new_job()
    js = pipeline.nc.jetstream()
    await js.publish(subjects.content(job.job_id, "blog.completed"), b"garbage")
    async with persistence_answering(pipeline.nc, {}):
        edit = {"title": "Mine", "markdown": "My own words."}
        assert await rest(gateway, "PUT", f"/v1/jobs/{job.job_id}/blog", edit) == (
            "not_ready",
            "the job has no blog post yet",
        )
        await pipeline.publish(job.blog())
        await js.publish(subjects.content(job.job_id, "blog.completed"), b'{"not": "an event"}')
        headers = {"Authorization": f"Bearer {gateway.token}"}
        async with httpx.AsyncClient(base_url=gateway.http_url, headers=headers, timeout=10) as http:
            response = await http.put(f"/v1/jobs/{job.job_id}/blog", json=edit)
        assert response.status_code == 202, response.text
        assert response.json() == {"job_id": job.job_id, "version": 2}


# ---- the same mistake, the same answer ------------------------------------------------------------------


async def test_authentication_comes_first_however_malformed_the_request(gateway, ws_connect):
    async with httpx.AsyncClient(base_url=gateway.http_url, timeout=10) as http:
        not_json = await http.post("/v1/jobs", content=b"{nope", headers={"Content-Type": "application/json"})
        bad_id = await http.get("/v1/jobs/not.a.job")
        bad_field = await http.post("/v1/jobs", json={"topic": "ab"})
    for response in (not_json, bad_id, bad_field):
        assert (response.status_code, response.json()["error"]["code"]) == (401, "unauthenticated")
    async with ws_connect(gateway, token=None) as client:
        for raw in ("{nope", '{"type": "start", "request": {"topic": "ab"}, "ref": "s"}', '{"type": "?"}'):
            await client.send(raw)
            assert (await client.expect("error"))["code"] == "unauthenticated", raw
        await client.send('{"type": "auth", "ref": "a"}')  # an auth frame's own mistake is named
        error = await client.expect("error")
        assert (error["code"], error["ref"], error["message"]) == (
            "invalid_request",
            "a",
            "token: Field required",
        )


async def test_a_body_that_is_not_json_is_invalid_json_on_every_transport(gateway, ws_connect):
    async with httpx.AsyncClient(base_url=gateway.http_url, timeout=10) as http:
        response = await http.post(
            "/v1/jobs",
            content=b'{"topic": ',
            headers={"Authorization": f"Bearer {gateway.token}", "Content-Type": "application/json"},
        )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_json"
    assert response.json()["error"]["message"].startswith("the body is not valid JSON: ")
    async with ws_connect(gateway) as client:
        await client.send('{"topic": ')
        assert (await client.expect("error"))["code"] == "invalid_json"
    async with ws_connect(gateway, "/content") as client:
        await client.send('{"topic": ')
        assert (await client.expect("error"))["payload"].startswith("invalid_json: ")


@TRANSPORTS
async def test_a_malformed_job_id_is_not_found(gateway, ws_connect, act):
    assert await act(gateway, ws_connect, "not.a.job", "cancel", {}) == ("not_found", "no job not.a.job")
