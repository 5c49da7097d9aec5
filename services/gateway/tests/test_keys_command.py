"""`python -m pressroom_gateway.keys`: the first API key from inside the gateway image (compose, k8s)."""

from __future__ import annotations

import asyncio
import os
import sys

import nats

from pressroom_contracts.access import ADMIN
from pressroom_devstack.nats import NatsServer
from pressroom_runtime import apikeys


async def keys(
    nats_url: str, *args: str, user: str | None = None, password: str = ""
) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_USER", "NATS_PASSWORD")}
    env["NATS_URL"] = nats_url
    if user is not None:
        env.update(NATS_USER=user, NATS_PASSWORD=password)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pressroom_gateway.keys",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_create_list_and_revoke_a_key(provisioned: str) -> None:
    code, out, err = await keys(provisioned, "create", "compose operator")
    assert code == 0, err
    token = out.strip()
    assert apikeys.looks_like_key(token) and "shown once" in err
    nc = await nats.connect(provisioned)
    try:
        record = await apikeys.lookup(nc, token)
        assert record is not None and record.name == "compose operator"
        code, out, _ = await keys(provisioned, "list")
        assert code == 0 and f"{record.client_id}\tcompose operator\t" in out
        assert (await keys(provisioned, "revoke", record.client_id))[0] == 0
        assert await apikeys.lookup(nc, token) is None
        code, _, err = await keys(provisioned, "revoke", record.client_id)
        assert code == 1 and "no key belongs to" in err
    finally:
        await nc.close()


async def test_an_empty_name_and_an_unreachable_bus_are_clear_errors(provisioned: str) -> None:
    code, _, err = await keys(provisioned, "create", "  ")
    assert code == 2 and "needs a name" in err
    code, _, err = await keys("nats://127.0.0.1:1", "list")
    assert code == 2 and err.startswith("error:")


async def test_it_connects_as_nats_user_which_must_be_the_admin(
    provisioned: str, nats_server: NatsServer
) -> None:
    """As in compose and Kubernetes: a plain NATS_URL, the user and password beside it."""
    users = nats_server.users
    assert users is not None
    code, out, err = await keys(
        nats_server.url, "create", "as admin", user=ADMIN, password=users.password(ADMIN)
    )
    assert code == 0, err
    assert apikeys.looks_like_key(out.strip())

    # The gateway's own user may read the key bucket, never write it: the server drops the write.
    code, out, err = await keys(
        nats_server.url, "create", "as gateway", user="gateway", password=users.password("gateway")
    )
    assert code == 2 and out == "", err
    assert "managing keys takes the 'admin' user" in err
