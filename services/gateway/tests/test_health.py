"""GET /healthz follows the NATS connection; GET /readyz also needs what provisioning creates;
GET /metrics."""

from __future__ import annotations

import asyncio

from pressroom_contracts.topology import KEY_BUCKET


async def test_healthz_is_ok_while_nats_is_connected(gateway):
    response = await gateway.healthz()
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "nats": "connected"}


async def test_healthz_is_503_while_nats_is_down_and_recovers(isolated_stack, ws_connect, eventually):
    async with isolated_stack.run() as (gateway, _):
        isolated_stack.nats.kill()

        async def status() -> int:
            return (await gateway.healthz()).status_code

        await eventually(lambda: _is(status(), 503), timeout=10, interval=0.05)
        assert (await gateway.healthz()).json()["nats"] == "disconnected"

        isolated_stack.nats.start()  # same port and store
        await eventually(lambda: _is(status(), 200), timeout=15, interval=0.05)

        # The gateway works again after the reconnect.
        async with ws_connect(gateway) as client:
            await client.send({"type": "start", "request": {"topic": "After the outage"}, "ref": "r"})
            assert (await client.expect("accepted"))["ref"] == "r"
            assert (await client.expect("event"))["event"]["type"] == "job.requested"


async def _is(value, expected) -> bool:
    return await value == expected


async def test_readyz_when_the_stream_and_the_buckets_exist(gateway):
    response = await gateway.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "nats": "connected",
        "stream": "ok",
        "key_bucket": "ok",
        "jobs_bucket": "ok",
        "idempotency_bucket": "ok",
    }


async def test_readyz_reports_what_is_missing(isolated_stack):
    async with isolated_stack.run() as (gateway, pipeline):
        await pipeline.nc.jetstream().delete_key_value(KEY_BUCKET.name)
        response = await gateway.get("/readyz")
        assert response.status_code == 503
        assert response.json()["key_bucket"] == "missing"
        assert response.json()["stream"] == "ok"
        # Healthy (connected) but not ready.
        assert (await gateway.healthz()).status_code == 200

        isolated_stack.nats.kill()
        await _eventually_status(gateway, "/readyz", 503, {"status": "unavailable", "nats": "disconnected"})
        isolated_stack.nats.start()
        # Reconnected before the gateway stops (it drains its connection on the way out).
        await _eventually_status(gateway, "/healthz", 200, {"status": "ok", "nats": "connected"})


async def _eventually_status(gateway, path: str, status: int, body: dict) -> None:
    for _ in range(200):
        response = await gateway.get(path)
        if response.status_code == status and response.json() == body:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never answered {status} {body}")


async def test_metrics_count_connections_frames_errors_and_jobs(gateway, ws_connect):
    async with ws_connect(gateway) as client:
        await client.barrier()
        await client.send({"type": "start", "request": {"topic": "Counted jobs"}, "ref": "s"})
        await client.expect("accepted")
        await client.expect("event")  # job.requested
        await client.send({"type": "nonsense"})
        await client.expect("error")
    async with ws_connect(gateway, token=None) as client:
        await client.send({"type": "ping"})
        await client.expect("error")

    response = await gateway.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in response.text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples['pressroom_gateway_ws_connections_total{endpoint="v1"}'] >= 2
    assert samples['pressroom_gateway_ws_frames_total{type="ping"}'] >= 2
    assert samples['pressroom_gateway_ws_frames_total{type="start"}'] >= 1
    assert samples['pressroom_gateway_ws_frames_total{type="invalid"}'] >= 1
    assert samples['pressroom_gateway_errors_total{code="unknown_type"}'] >= 1
    assert samples['pressroom_gateway_errors_total{code="unauthenticated"}'] >= 1
    assert samples["pressroom_gateway_jobs_started_total"] >= 1
    assert 'pressroom_gateway_ws_open_connections{endpoint="v1"}' in samples
