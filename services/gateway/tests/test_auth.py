"""Authentication and isolation over real WebSockets against a real nats-server."""

from __future__ import annotations

import time
from typing import Annotated

import jwt
import nats
import pytest
from fastapi import Depends
from nats.js.errors import NotFoundError

from pressroom_contracts import subjects
from pressroom_contracts.events import JobRequestedEvent, parse_event
from pressroom_gateway.auth import Client, bearer
from pressroom_gateway.deps import current_client
from pressroom_gateway.errors import Unauthenticated
from pressroom_runtime.apikeys import revoke

from .conftest import new_key

JWT_SECRET = "a-test-signing-secret-of-32-bytes!"


def make_jwt(
    sub: str = "jwt-alice", expires_in: float | None = 60, secret: str = JWT_SECRET, **claims
) -> str:
    payload = {"sub": sub, **claims}
    if expires_in is not None:
        payload["exp"] = int(time.time() + expires_in)
    return jwt.encode(payload, secret, algorithm="HS256")


async def assert_refused(client, code: str = "unauthenticated", close: int = 1008) -> dict:
    error = await client.expect("error")
    assert error["code"] == code, error
    closed = await client.closed()
    assert closed.rcvd is not None and closed.rcvd.code == close, closed
    return error


# ---- unauthenticated connections ------------------------------------------------------------------------


async def test_until_authenticated_every_frame_but_auth_is_refused(gateway, ws_connect):
    async with ws_connect(gateway, token=None) as client:
        await client.send({"type": "ping", "ref": "p"})
        assert (await client.expect("error"))["code"] == "unauthenticated"
        await client.send({"type": "start", "request": {"topic": "Sneaking in"}, "ref": "s"})
        error = await client.expect("error")
        assert (error["code"], error["ref"]) == ("unauthenticated", "s")
        await client.send({"type": "subscribe", "job_id": "abc", "ref": "u"})
        assert (await client.expect("error"))["code"] == "unauthenticated"

        # The auth frame has no reply of its own; then everything works.
        await client.send({"type": "auth", "token": gateway.token, "ref": "a"})
        await client.barrier()
        await client.send({"type": "start", "request": {"topic": "Signed in late"}, "ref": "s2"})
        assert (await client.expect("accepted"))["ref"] == "s2"


async def test_a_bad_token_is_refused_and_the_connection_closed(gateway, ws_connect):
    # In the handshake: header or query.
    async with ws_connect(gateway, token="prk_not-a-real-key") as client:
        await assert_refused(client)
    async with ws_connect(gateway, f"/v1/ws?token={gateway.token}x", token=None) as client:
        await assert_refused(client)
    async with ws_connect(gateway, token="no prefix, and no jwt secret configured") as client:
        await assert_refused(client)
    # In an auth frame.
    async with ws_connect(gateway, token=None) as client:
        await client.send({"type": "auth", "token": "prk_guess", "ref": "a"})
        error = await assert_refused(client)
        assert error["ref"] == "a"


async def test_a_token_in_the_query_string_authenticates(gateway, ws_connect):
    async with ws_connect(gateway, f"/v1/ws?token={gateway.token}", token=None) as client:
        await client.barrier()


async def test_a_revoked_key_stops_working(gateway_factory, ws_connect, provisioned):
    key = await new_key(provisioned, "soon revoked")
    async with gateway_factory(auth_cache_seconds=0) as gw:
        async with ws_connect(gw, token=key.token) as client:
            await client.barrier()
        nc = await nats.connect(provisioned)
        try:
            assert await revoke(nc, key.client_id)
        finally:
            await nc.close()
        async with ws_connect(gw, token=key.token) as client:
            await assert_refused(client)


# ---- JWT -----------------------------------------------------------------------------------------------


async def test_jwt_is_accepted_when_a_secret_is_configured(gateway_factory, ws_connect, pipeline):
    async with gateway_factory(jwt_secret=JWT_SECRET) as gw:
        async with ws_connect(gw, token=make_jwt("jwt-alice")) as client:
            await client.send({"type": "start", "request": {"topic": "Signed tokens"}, "ref": "s"})
            job_id = (await client.expect("accepted"))["job_id"]
            first = await client.expect("event")
            assert first["event"]["data"]["owner"] == "jwt-alice"
        # API keys keep working beside JWTs.
        async with ws_connect(gw) as client:
            await client.barrier()
            # ...and they are another client: the JWT client's job is not theirs.
            await client.send({"type": "subscribe", "job_id": job_id, "ref": "x"})
            assert (await client.expect("error"))["code"] == "not_found"


async def test_expired_forged_or_incomplete_jwts_are_refused(gateway_factory, gateway, ws_connect):
    async with gateway_factory(jwt_secret=JWT_SECRET) as gw:
        for token in (
            make_jwt(expires_in=-30),  # expired
            make_jwt(secret="another-secret-of-at-least-32-bytes"),  # forged
            make_jwt(expires_in=None),  # no exp
            jwt.encode({"exp": int(time.time()) + 60}, JWT_SECRET, algorithm="HS256"),  # no sub
            jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, "k" * 48, algorithm="HS384"),
        ):
            async with ws_connect(gw, token=token) as client:
                await assert_refused(client)
    # Without a secret no JWT is accepted at all.
    async with ws_connect(gateway, token=make_jwt()) as client:
        await assert_refused(client)


# ---- isolation -----------------------------------------------------------------------------------------


async def test_another_clients_job_answers_not_found(gateway, ws_connect, pipeline, other_key):
    job, _ = await pipeline.new_job()  # the test client's
    async with ws_connect(gateway, token=other_key.token) as intruder:
        await intruder.send({"type": "subscribe", "job_id": job.job_id, "ref": "s"})
        error = await intruder.expect("error")
        assert (error["code"], error["ref"]) == ("not_found", "s")
        assert error["message"] == f"no job {job.job_id}"  # word for word what a missing job gets

        await intruder.send({"type": "cancel", "job_id": job.job_id, "ref": "c"})
        error = await intruder.expect("error")
        assert (error["code"], error["ref"]) == ("not_found", "c")

        # Still nothing arrives from that job.
        await pipeline.publish(job.research())
        await intruder.quiet()

    # No cancel request reached the job.
    with pytest.raises(NotFoundError):
        await pipeline.nc.jetstream().get_last_msg(
            subjects.STREAM, subjects.content(job.job_id, "cancel.requested")
        )

    # Its owner still sees it.
    async with ws_connect(gateway) as owner:
        await owner.send({"type": "subscribe", "job_id": job.job_id})
        assert [f["event"]["type"] for f in await owner.events(2)] == ["job.requested", "research.completed"]


async def test_jobs_from_before_auth_belong_to_nobody_with_a_key(gateway, ws_connect, pipeline):
    job, _ = await pipeline.new_job(owner=None)
    async with ws_connect(gateway) as client:
        await client.send({"type": "subscribe", "job_id": job.job_id, "ref": "s"})
        assert (await client.expect("error"))["code"] == "not_found"


async def test_each_client_starts_jobs_of_its_own(gateway, ws_connect, pipeline, other_key):
    async with ws_connect(gateway, token=other_key.token) as other:
        await other.send({"type": "start", "request": {"topic": "Mine, not yours"}})
        job_id = (await other.expect("accepted"))["job_id"]
        assert (await other.expect("event"))["event"]["data"]["owner"] == other_key.client_id
        await other.send({"type": "cancel", "job_id": job_id, "ref": "k"})
        frames = [await other.recv() for _ in range(2)]
        assert {"type": "accepted", "job_id": job_id, "ref": "k"} in frames
    msg = await pipeline.nc.jetstream().get_last_msg(
        subjects.STREAM, subjects.content(job_id, "job.requested")
    )
    event = parse_event(msg.data)
    assert isinstance(event, JobRequestedEvent) and event.data.owner == other_key.client_id


# ---- REST: the dependency -------------------------------------------------------------------------------


async def test_current_client_dependency(gateway):
    async def whoami(client: Annotated[Client, Depends(current_client)]) -> dict:
        return {"id": client.id, "name": client.name}

    if not any(getattr(r, "path", None) == "/test/whoami" for r in gateway.app.routes):
        gateway.app.get("/test/whoami")(whoami)

    ok = await gateway.get("/test/whoami", headers={"Authorization": f"Bearer {gateway.token}"})
    assert ok.status_code == 200
    assert ok.json() == {"id": gateway.client_id, "name": "gateway tests"}

    missing = await gateway.get("/test/whoami")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "unauthenticated"
    assert missing.headers["www-authenticate"].startswith("Bearer")

    bad = await gateway.get("/test/whoami", headers={"Authorization": "Bearer prk_nope"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (401, "unauthenticated")
    basic = await gateway.get("/test/whoami", headers={"Authorization": f"Basic {gateway.token}"})
    assert basic.status_code == 401


def test_bearer_header_parsing():
    assert bearer("Bearer abc") == "abc"
    assert bearer("bearer   abc ") == "abc"
    assert bearer("Basic abc") is None
    assert bearer("Bearer ") is None
    assert bearer(None) is None
    assert Unauthenticated("x").status == 401
