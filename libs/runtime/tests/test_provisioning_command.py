"""`python -m pressroom_runtime.provisioning` as compose and Kubernetes run it: a plain NATS_URL and the
admin's NATS_USER / NATS_PASSWORD beside it (no service's user may create the topology:
libs/devstack/tests/test_natsauth.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

import nats
from nats.js.errors import NotFoundError

from pressroom_contracts.access import ADMIN
from pressroom_contracts.topology import CONSUMERS, CONTENT_STREAM
from pressroom_devstack.nats import NatsServer


async def provisioning(nats_url: str, user: str, password: str) -> tuple[int, str]:
    env = {**os.environ, "NATS_URL": nats_url, "NATS_USER": user, "NATS_PASSWORD": password}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pressroom_runtime.provisioning",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_provisioning_connects_as_nats_user(nats_server: NatsServer) -> None:
    users = nats_server.users
    assert users is not None
    admin = await nats.connect(nats_server.admin_url)
    try:
        with contextlib.suppress(
            NotFoundError
        ):  # the stream goes with its durables: the command remakes them
            await admin.jetstream().delete_stream(CONTENT_STREAM.name)

        code, err = await provisioning(nats_server.url, ADMIN, users.password(ADMIN))
        assert code == 0, err
        assert all(f"{c.durable}: created" in err for c in CONSUMERS), err
        for consumer in CONSUMERS:
            assert (await admin.jetstream().consumer_info(CONTENT_STREAM.name, consumer.durable)).name
    finally:
        await admin.close()
