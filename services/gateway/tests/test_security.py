"""Nobody in: Host and Origin checks, the page key only on loopback, input that cannot be stored, hostile
JSON, bad sequences and immediate revocation, each over every transport it concerns."""

from __future__ import annotations

import asyncio
import base64
import json
import os

import httpx
import nats
import pytest

from pressroom_contracts import subjects
from pressroom_runtime.apikeys import revoke

from .conftest import Gateway, new_key


def http(gw: Gateway, token: str | None = None, **headers: str) -> httpx.AsyncClient:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.AsyncClient(base_url=gw.http_url, headers=headers, timeout=10)


async def _handshake_status(gw: Gateway, path: str, **headers: str) -> int:
    """The status a WebSocket handshake with these headers gets (101: accepted). Raw, so that the
    Host header is exactly the one given."""
    reader, writer = await asyncio.open_connection(gw.settings.host, gw.settings.port)
    fields = {
        "Host": f"{gw.settings.host}:{gw.settings.port}",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
        **headers,
    }
    request = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
    try:
        writer.write(request.encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
        return int(status_line.split()[1])
    finally:
        writer.close()


# ---- Host and Origin ------------------------------------------------------------------------------------


async def test_a_foreign_host_is_refused_but_probes_answer(gateway_factory, test_key):
    # With a page token, so that a refused page is seen not to carry it.
    async with gateway_factory(page_token=test_key.token) as gateway:
        async with http(gateway, gateway.token, Host="evil.example") as client:
            for path in ("/", "/v1/jobs", "/static/app.js", "/openapi.json"):
                response = await client.get(path)
                assert response.status_code == 403, path
                assert response.json()["error"]["code"] == "forbidden_host"
                assert gateway.token not in response.text
            for path in ("/healthz", "/readyz", "/metrics"):
                assert (await client.get(path)).status_code == 200, path
        for path in ("/v1/ws", "/content"):
            assert await _handshake_status(gateway, path, Host="evil.example") == 403
        # Loopback names, with or without a port, are this gateway.
        for host in ("localhost", f"localhost:{gateway.settings.port}", f"[::1]:{gateway.settings.port}"):
            async with http(gateway, Host=host) as client:
                assert (await client.get("/")).status_code == 200, host


async def test_the_page_carries_the_key_only_for_a_loopback_host(gateway_factory):
    async with gateway_factory(allowed_hosts="127.0.0.1,press.example", page_token="prk_the-local-key") as gw:
        async with http(gw) as client:
            assert 'content="prk_the-local-key"' in (await client.get("/")).text
        async with http(gw, Host="press.example") as client:
            page = await client.get("/")
            assert page.status_code == 200
            assert "prk_the-local-key" not in page.text
            assert '<meta name="pressroom-token" content="">' in page.text


async def test_a_foreign_origin_is_refused_on_websockets_and_event_streams(gateway_factory, pipeline):
    async with gateway_factory(allowed_origins="https://app.example") as gw:
        own = f"http://127.0.0.1:{gw.settings.port}"
        bearer = {"Authorization": f"Bearer {gw.token}"}
        for path in ("/v1/ws", "/content"):
            assert await _handshake_status(gw, path, Origin="http://evil.example", **bearer) == 403
            assert await _handshake_status(gw, path, Origin="null", **bearer) == 403
            assert await _handshake_status(gw, path, Origin=own, **bearer) == 101
            assert await _handshake_status(gw, path, Origin="https://app.example", **bearer) == 101
        job, _ = await pipeline.new_job()
        await pipeline.publish(job.job_completed())
        events = f"/v1/jobs/{job.job_id}/events"
        async with http(gw, gw.token, Origin="http://evil.example") as client:
            refused = await client.get(events)
            assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden_origin")
        async with http(gw, gw.token, Origin=own) as client:
            assert (await client.get(events)).status_code == 200


# ---- input that cannot be stored ------------------------------------------------------------------------


async def test_control_characters_are_refused_naming_the_field_everywhere(gateway, ws_connect, pipeline):
    async with http(gateway, gateway.token) as client:
        for field in ("topic", "tone", "audience"):
            body = {"topic": "Solar power", field: "solar\u0000power"}
            response = await client.post("/v1/jobs", json=body)
            assert response.status_code == 422, field
            error = response.json()["error"]
            assert error["code"] == "invalid_request"
            assert error["message"].startswith(f"{field}: ") and "U+0000" in error["message"], error
        job, _ = await pipeline.new_job()
        await pipeline.publish(job.blog())
        edit = await client.put(f"/v1/jobs/{job.job_id}/blog", json={"title": "T", "markdown": "a\u0000b"})
        assert edit.status_code == 422 and edit.json()["error"]["message"].startswith("markdown: ")
        regenerate = await client.post(
            f"/v1/jobs/{job.job_id}/regenerate", json={"stage": "blog", "instructions": "x\u001bq"}
        )
        assert regenerate.status_code == 422 and "U+001B" in regenerate.json()["error"]["message"]
    async with ws_connect(gateway) as client:
        await client.send({"type": "start", "request": {"topic": "solar\u0000power"}, "ref": "s"})
        error = await client.expect("error")
        assert (error["code"], error["ref"]) == ("invalid_request", "s")
        assert error["message"].startswith("topic: ") and "U+0000" in error["message"]
        await client.barrier()
    async with ws_connect(gateway, "/content") as client:
        await client.send({"topic": "solar\u0000power"})
        message = await client.recv()
        assert message["type"] == "error" and message["payload"].startswith("invalid_request: topic: ")
    # Nothing was published for any of them.
    js = pipeline.nc.jetstream()
    info = await js.stream_info(subjects.STREAM, subjects_filter=subjects.content_of_type("job.requested"))
    stored = [s for s in (info.state.subjects or {}) if s != subjects.content(job.job_id, "job.requested")]
    for subject in stored:
        msg = await js.get_last_msg(subjects.STREAM, subject)
        assert b"\\u0000" not in (msg.data or b""), subject


# ---- hostile JSON and bad sequences ----------------------------------------------------------------------


async def test_deep_json_is_refused_before_parsing_and_the_connection_stays_usable(gateway, ws_connect):
    deep = '{"type": "ping", "ref": "d", "x": ' + "[" * 10_000 + "]" * 10_000 + "}"
    async with ws_connect(gateway) as client:
        await client.send(deep)
        error = await client.expect("error")
        assert error["code"] == "invalid_json" and "deeper than 32" in error["message"]
        await client.barrier()
    async with ws_connect(gateway, "/content") as client:
        await client.send(deep)
        message = await client.recv()
        assert message["type"] == "error" and "deeper than 32" in message["payload"]
    async with http(gateway, gateway.token) as client:
        body = '{"topic": ' + "[" * 10_000 + "]" * 10_000 + "}"
        response = await client.post("/v1/jobs", content=body, headers={"Content-Type": "application/json"})
        assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_json")
        big = json.dumps({"topic": "x" * (2 * 1024 * 1024)})
        response = await client.post("/v1/jobs", content=big, headers={"Content-Type": "application/json"})
        assert (response.status_code, response.json()["error"]["code"]) == (413, "too_large")
        again = await client.post("/v1/jobs", json={"topic": "Still answering"})
        assert again.status_code == 202  # and it still answers


@pytest.mark.parametrize("value", ["99999999999999999999999", "-1", "1e3", "0x10", ""])
async def test_bad_sequences_are_refused_over_sse(gateway, pipeline, value):
    job, _ = await pipeline.new_job()
    async with http(gateway, gateway.token) as client:
        for headers, params in (({"Last-Event-ID": value or "x"}, {}), ({}, {"after_seq": value or "٣"})):
            response = await client.get(f"/v1/jobs/{job.job_id}/events", headers=headers, params=params)
            assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_request")


@pytest.mark.parametrize("value", ["99999999999999999999999", "-1", '"one"', "null"])
async def test_bad_sequences_are_refused_over_the_websocket(gateway, ws_connect, pipeline, value):
    job, _ = await pipeline.new_job()
    async with ws_connect(gateway) as client:
        await client.send(
            f'{{"type": "subscribe", "job_id": "{job.job_id}", "after_seq": {value}, "ref": "b"}}'
        )
        error = await client.expect("error")
        assert (error["code"], error["ref"]) == ("invalid_request", "b")  # as SSE answers it
        assert error["message"].startswith("after_seq: ")
        await client.barrier()


# ---- revocation -----------------------------------------------------------------------------------------


async def test_a_revoked_key_is_refused_and_its_open_connections_closed_at_once(
    gateway_factory, ws_connect, pipeline, eventually
):
    # A long cache: only the bucket watch can make the revocation take effect in time.
    async with (
        gateway_factory(auth_cache_seconds=3600) as gw,
        gateway_factory(auth_cache_seconds=3600) as other,
    ):
        key = await new_key(gw.settings.nats_url, "to be revoked")
        job, _ = await pipeline.new_job(owner=key.client_id)
        async with (
            ws_connect(gw, token=key.token) as socket,
            ws_connect(other, token=key.token) as elsewhere,
            ws_connect(gw, "/content", token=key.token) as legacy,
        ):
            for client in (socket, elsewhere):
                await client.send({"type": "subscribe", "job_id": job.job_id})
                await client.expect("event")
            await legacy.send({"topic": "Revoked while it runs", "research": False})
            await legacy.expect("progress_event")
            async with http(gw, key.token) as stream_client:
                async with stream_client.stream("GET", f"/v1/jobs/{job.job_id}/events") as stream:
                    lines = stream.aiter_lines()
                    while not (await anext(lines)).startswith("data:"):  # job.requested, streamed
                        pass

                    nc = await nats.connect(gw.settings.nats_url)
                    try:
                        assert await revoke(nc, key.client_id)
                    finally:
                        await nc.close()
                    started = asyncio.get_running_loop().time()

                    # Both replicas close its WebSockets with the reason, well within two seconds.
                    for client in (socket, elsewhere):
                        error = await client.expect("error", timeout=2)
                        assert error["code"] == "revoked"
                        closed = await client.closed(timeout=2)
                        assert (closed.rcvd.code, closed.rcvd.reason) == (1008, "revoked")
                    # /content says so in its own shape, and closes the same way.
                    error = await legacy.expect("error", timeout=2)
                    assert error["payload"] == "revoked: the API key was revoked"
                    closed = await legacy.closed(timeout=2)
                    assert (closed.rcvd.code, closed.rcvd.reason) == (1008, "revoked")
                    # The event stream ends with an error event.
                    rest = [line async for line in lines]
                    assert "event: error" in rest and any('"revoked"' in line for line in rest)
                    assert asyncio.get_running_loop().time() - started < 2
        # And the key no longer authenticates anything, on either replica.
        for gateway in (gw, other):
            async with http(gateway, key.token) as client:
                assert (await client.get("/v1/jobs")).status_code == 401
