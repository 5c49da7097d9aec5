"""GET /healthz follows the NATS connection."""

from __future__ import annotations


async def test_healthz_is_ok_while_nats_is_connected(gateway):
    response = await gateway.healthz()
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "nats": "connected"}


async def test_healthz_is_503_while_nats_is_down_and_recovers(isolated_stack, ws_connect, eventually):
    async with isolated_stack.run() as (gateway, _):
        isolated_stack.nats.kill()

        async def status() -> int:
            return (await gateway.healthz()).status_code

        await eventually(lambda: _is(status(), 503))
        assert (await gateway.healthz()).json()["nats"] == "disconnected"

        isolated_stack.nats.start()  # same port and store
        await eventually(lambda: _is(status(), 200), timeout=15)

        # The gateway works again after the reconnect.
        async with ws_connect(gateway) as client:
            await client.send({"type": "start", "request": {"topic": "After the outage"}, "ref": "r"})
            assert (await client.expect("accepted"))["ref"] == "r"
            assert (await client.expect("event"))["event"]["type"] == "job.requested"


async def _is(value, expected) -> bool:
    return await value == expected
