"""No secret in any log line: a gateway process (its own logging, uvicorn's lines included) is driven with
API keys and JWTs in query strings and headers, good and bad, then its whole log is searched for each."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time

import httpx
import jwt
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from pressroom_devstack.ports import free_port

from .conftest import new_key

JWT_SECRET = "a-log-test-signing-secret-of-32-bytes"


async def test_no_token_reaches_the_log(provisioned, pipeline, tmp_path):
    keys = [await new_key(provisioned, f"logged {i}") for i in range(2)]
    jwt_token = jwt.encode(
        {"sub": "jwt-logger", "exp": int(time.time()) + 600}, JWT_SECRET, algorithm="HS256"
    )
    unknown = "prk_not-a-key-but-still-a-secret"
    secrets = [key.token for key in keys] + [jwt_token, unknown]

    port = free_port()
    env = {
        **os.environ,
        "NATS_URL": provisioned,
        "PRESSROOM_GATEWAY_PORT": str(port),
        "PRESSROOM_GATEWAY_JWT_SECRET": JWT_SECRET,
        "PRESSROOM_LOG_LEVEL": "DEBUG",
        "PRESSROOM_LOG_FORMAT": "json",
    }
    log_path = tmp_path / "gateway.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: ASYNC220 (the process under test, started once)
            [sys.executable, "-m", "pressroom_gateway"], env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
        try:
            base = f"http://127.0.0.1:{port}"
            await _healthy(base)
            job, _ = await pipeline.new_job(owner=keys[0].client_id)
            await pipeline.publish(job.job_completed())
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                for token in secrets:
                    await http.get("/v1/jobs", headers={"Authorization": f"Bearer {token}"})
                    await http.get(f"/v1/jobs/{job.job_id}/events", params={"token": token})
                    await http.get(f"/v1/jobs/{job.job_id}/export.md?token={token}&x=1")
            for token in secrets:
                for path in (f"/v1/ws?token={token}", f"/content?token={token}"):
                    async with connect(f"ws://127.0.0.1:{port}{path}", open_timeout=5) as ws:
                        with contextlib.suppress(ConnectionClosed):  # the unknown key is refused
                            await ws.send('{"type": "ping"}')
                            await asyncio.wait_for(ws.recv(), 5)
        finally:
            process.terminate()
            process.wait(timeout=30)

    log = log_path.read_text()
    # The requests were logged (uvicorn's WebSocket lines carry the path with its query string) …
    assert log.count("WebSocket /v1/ws?token=[redacted]") >= len(secrets), log[-2000:]
    # … and not one token is in the log, whole or in part.
    for secret in secrets:
        assert secret not in log
        assert secret[-16:] not in log


async def _healthy(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=2) as http:
        for _ in range(300):
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the gateway did not start")
