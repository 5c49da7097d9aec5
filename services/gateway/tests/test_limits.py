"""Limits and moderation: rate limits, connection caps, topic refusals."""

from __future__ import annotations

import json

import httpx2
import pytest

from pressroom_contracts.jobs import JobRequest
from pressroom_gateway.errors import TopicRefused
from pressroom_gateway.moderation import DEFAULT_BLOCKLIST, Moderator, compile_blocklist
from pressroom_gateway.settings import GatewaySettings

from .test_legacy import next_job, started_jobs


async def start(client, topic: str, ref: str) -> dict:
    await client.send({"type": "start", "request": {"topic": topic}, "ref": ref})
    return await client.recv()


# ---- job creation --------------------------------------------------------------------------------------


async def test_starting_too_many_jobs_is_rate_limited(gateway_factory, ws_connect):
    async with gateway_factory(job_rate="2/minute") as gw, ws_connect(gw) as client:
        for ref in ("a", "b"):
            assert (await start(client, f"Job {ref}", ref))["type"] == "accepted"
            assert (await client.expect("event"))["event"]["type"] == "job.requested"
        refused = await start(client, "One too many", "c")
        assert (refused["type"], refused["code"], refused["ref"]) == ("error", "rate_limited", "c")
        assert "try again in" in refused["message"]
        await client.barrier()  # the connection stays usable


# ---- connections ---------------------------------------------------------------------------------------


async def test_a_client_may_hold_only_so_many_connections(gateway_factory, ws_connect, other_key, eventually):
    async with gateway_factory(max_connections=2) as gw:
        async with ws_connect(gw) as first, ws_connect(gw) as second:
            await first.barrier()
            await second.barrier()
            async with ws_connect(gw) as third:
                error = await third.expect("error")
                assert error["code"] == "rate_limited"
                closed = await third.closed()
                assert closed.rcvd is not None and closed.rcvd.code == 1013
            # Another client is not affected.
            async with ws_connect(gw, token=other_key.token) as other:
                await other.barrier()
            # Nor is a client that authenticates with a frame: it is refused the same way.
            async with ws_connect(gw, token=None) as late:
                await late.send({"type": "auth", "token": gw.token, "ref": "a"})
                error = await late.expect("error")
                assert (error["code"], error["ref"]) == ("rate_limited", "a")

        # Once they are closed, the client may connect again.
        async def can_connect() -> bool:
            async with ws_connect(gw) as again:
                frame_or_pong = await _ping(again)
                return frame_or_pong == {"type": "pong", "ref": "p"}

        await eventually(can_connect, timeout=5, interval=0.1)


async def _ping(client) -> dict:
    await client.send({"type": "ping", "ref": "p"})
    return await client.recv()


async def test_connection_attempts_per_address_are_limited_before_auth(gateway_factory, ws_connect):
    async with gateway_factory(connect_rate="3/minute") as gw:
        for _ in range(3):
            async with ws_connect(gw, token=None) as client:
                await client.send({"type": "ping"})
                assert (await client.expect("error"))["code"] == "unauthenticated"
        # Even with a valid key: the attempt is counted before the token is looked at.
        async with ws_connect(gw) as client:
            error = await client.expect("error")
            assert error["code"] == "rate_limited"
            assert (await client.closed()).rcvd.code == 1013
        async with ws_connect(gw, "/content") as legacy:
            error = await legacy.recv()
            assert error["type"] == "error" and error["payload"].startswith("rate_limited")


# ---- moderation ----------------------------------------------------------------------------------------


async def test_a_blocklisted_topic_is_refused_with_the_reason(gateway_factory, ws_connect):
    async with gateway_factory(blocklist="crypto scams, Forbidden") as gw, ws_connect(gw) as client:
        refused = await start(client, "How CRYPTO   scams work", "c1")
        assert (refused["type"], refused["code"], refused["ref"]) == ("error", "topic_refused", "c1")
        assert "crypto scams" in refused["message"].lower()
        # The built-in list applies too.
        refused = await start(client, "Why you should kill yourself", "c2")
        assert refused["code"] == "topic_refused"
        # Whole words only.
        assert (await start(client, "Forbiddenness in gardens", "ok"))["type"] == "accepted"


async def test_content_applies_auth_limits_and_moderation(gateway_factory, ws_connect):
    async with gateway_factory(blocklist="forbidden") as gw, ws_connect(gw, "/content") as client:
        await client.send({"topic": "The forbidden city", "research": False})
        message = await client.recv()
        assert message["type"] == "error" and message["payload"].startswith("topic_refused")


def test_blocklist_matches_whole_words_case_insensitively():
    pattern = compile_blocklist(["bad thing", "kys", "c++"])
    assert pattern is not None
    assert pattern.search("A BAD   thing happened")
    assert pattern.search("kys.")
    assert pattern.search("about c++ templates")
    assert not pattern.search("badthing")
    assert not pattern.search("skys and seas")
    assert not pattern.search("a bad thingamajig")
    assert compile_blocklist([" ", ""]) is None
    assert all(compile_blocklist([term]) for term in DEFAULT_BLOCKLIST)


def _moderation_response(flagged: bool, **categories: bool) -> dict:
    names = ["harassment", "hate", "self-harm", "sexual", "sexual/minors", "violence", "illicit"]
    return {
        "id": "modr-1",
        "model": "omni-moderation-latest",
        "results": [
            {
                "flagged": flagged,
                "categories": {
                    name: categories.get(name.replace("/", "_").replace("-", "_"), False) for name in names
                },
                "category_scores": dict.fromkeys(names, 0.0),
                "category_applied_input_types": {name: ["text"] for name in names},
            }
        ],
    }


def _moderator(handler) -> Moderator:
    settings = GatewaySettings(
        moderation="openai", openai_api_key="sk-test", openai_base_url="http://moderation.test/v1"
    )
    return Moderator(
        settings=settings, http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    )


async def test_openai_moderation_refuses_a_flagged_topic():
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        body = json.loads(request.content)
        flagged = "hateful" in body["input"]
        return httpx2.Response(200, json=_moderation_response(flagged, hate=flagged, harassment=flagged))

    moderator = _moderator(handler)
    assert moderator.uses_openai
    await moderator.check(JobRequest(topic="Gardening in spring"))
    with pytest.raises(TopicRefused, match="flagged by moderation: harassment, hate"):
        await moderator.check(JobRequest(topic="A hateful rant"))

    request = seen[-1]
    assert request.url.path == "/v1/moderations"
    assert request.headers["authorization"] == "Bearer sk-test"
    body = json.loads(request.content)
    assert body["model"] == "omni-moderation-latest"
    assert body["input"].startswith("A hateful rant")


async def test_openai_moderation_failing_lets_the_request_through_and_the_blocklist_still_applies():
    calls = 0

    def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        return httpx2.Response(500, json={"error": {"message": "down"}})

    moderator = _moderator(handler)
    await moderator.check(JobRequest(topic="Gardening in autumn"))
    assert calls >= 1
    with pytest.raises(TopicRefused, match="blocked term"):
        await moderator.check(JobRequest(topic="snuff films explained"))
    assert calls == 2  # refused by the blocklist before any call


def test_openai_moderation_needs_a_key():
    assert not Moderator(settings=GatewaySettings(moderation="openai", openai_api_key=None)).uses_openai
    assert not Moderator(settings=GatewaySettings(openai_api_key="sk-test")).uses_openai


# ---- /content's one request ------------------------------------------------------------------------------


async def test_content_waits_for_its_request_only_so_long(gateway_factory, ws_connect):
    async with gateway_factory(content_request_timeout=0.5) as gw, ws_connect(gw, "/content") as client:
        closed = await client.closed(timeout=5)
        assert (closed.rcvd.code, closed.rcvd.reason) == (1001, "no request")


async def test_content_job_counts_against_the_quota(gateway_factory, ws_connect, pipeline):
    async with gateway_factory(job_rate="1/minute") as gw:
        async with started_jobs(pipeline) as jobs, ws_connect(gw, "/content") as client:
            await client.send({"topic": "The only one", "research": False})
            await next_job(jobs)
        async with ws_connect(gw, "/content") as client:
            await client.send({"topic": "One more", "research": False})
            message = await client.recv()
            assert message["type"] == "error" and message["payload"].startswith("rate_limited")
