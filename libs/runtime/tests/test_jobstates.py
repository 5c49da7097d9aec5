"""The job-state bucket on a real nats-server: a reply that comes too late is asked for again."""

from __future__ import annotations

import asyncio
import uuid

import nats

from pressroom_devstack.provisioning import reset_nats
from pressroom_runtime.jobstates import JobStates

# nats-py's JetStream requests wait 5 s for their reply.
REPLY_TIMEOUT = 5.0


async def test_a_read_and_a_create_outlive_a_server_that_stalls_past_the_reply_timeout(nats_server, nats_url):
    reset_nats(nats_url)
    nc = await nats.connect(nats_url)
    try:
        states = JobStates(nc)
        job_id, late_job = str(uuid.uuid4()), str(uuid.uuid4())
        assert await states.create(job_id, "client-a")

        # A loaded host: the server is alive, its connections open, and it answers after the timeout.
        nats_server.freeze()
        asyncio.get_running_loop().call_later(REPLY_TIMEOUT + 0.5, nats_server.thaw)
        try:
            state, created = await asyncio.gather(states.get(job_id), states.create(late_job, "client-b"))
        finally:
            nats_server.thaw()
        assert state is not None and state.owner == "client-a"
        # The first create may have landed with its reply lost: either way the entry is there, once.
        assert created in (True, False)
        late = await states.get(late_job)
        assert late is not None and late.owner == "client-b"
    finally:
        await nc.close()
