"""docker-compose.yml brought up for real (podman, podman-compose) and a job run through it end to end.

What runs is the committed compose file with the one Pressroom image built from the repository; only the
infrastructure images are local stand-ins (tests/compose_stack.py says which and why), and the text
model is the suite's scripted OpenAI-compatible server reached by OPENAI_BASE_URL alone, with no key.
NATS requires its users (deploy/nats/auth.conf), passwords generated as .env.example says: the first
API key comes from the documented command (the `keys` tool, as the admin user), every service connects
as its own user, and from this host a service's user is refused another's event while the read-only
`reader` reads the job's. Skipped, with the reason, where no container engine can run.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import httpx
import nats
import pytest
import websockets
from compose_stack import ComposeStack, ensure_images, missing_engine
from nats.errors import Error as NatsError

from pressroom_contracts import access, parties, subjects
from pressroom_devstack.ports import free_port
from pressroom_runtime.history import recorded

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(3600),
    pytest.mark.skipif(missing_engine() is not None, reason=str(missing_engine())),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    started = time.monotonic()
    spent = ensure_images()
    built = time.monotonic()
    ports = {name: free_port() for name in ("gateway", "s3", "nats")}
    compose = ComposeStack(
        project=f"prtest{ports['gateway']}", workdir=tmp_path_factory.mktemp("compose"), ports=ports
    )
    try:
        compose.up()
        up = time.monotonic()
        print(f"\nimages {built - started:.0f} s, per step {spent}; stack up in order {up - built:.0f} s")
        yield compose
        print(f"\nthe job and its checks {time.monotonic() - up:.0f} s")
    finally:
        down = time.monotonic()
        compose.down()
        print(f"teardown {time.monotonic() - down:.0f} s; in all {time.monotonic() - started:.0f} s")


async def test_a_job_runs_through_the_compose_stack(stack: ComposeStack) -> None:
    # The first API key, as the README says: the keys tool, run on demand as the admin NATS user.
    output = stack.compose("--profile", "tools", "run", "--rm", "keys", "create", "compose test")
    token = output.strip().splitlines()[-1]
    assert re.fullmatch(r"prk_\S+", token), output

    request = {"topic": "Rooftop solar", "platforms": ["linkedin", "x"], "research": True, "image": True}
    ws_url = f"ws://127.0.0.1:{stack.ports['gateway']}/v1/ws?token={token}"
    events: list[dict] = []
    async with websockets.connect(ws_url) as ws:
        await ws.send(json.dumps({"type": "start", "request": request, "ref": "r1"}))
        while True:
            frame = json.loads(await ws.recv())
            assert frame["type"] != "error", frame
            if frame["type"] == "accepted":
                job_id = frame["job_id"]
            if frame["type"] == "event":
                events.append(frame["event"])
                if frame["event"]["type"] in ("job.completed", "job.failed", "job.cancelled"):
                    break
    types = [e["type"] for e in events]
    assert types[-1] == "job.completed", f"{types}\n{stack.logs('persistence')}"
    for expected in ("research.completed", "blog.completed", "social.completed", "image.completed"):
        assert expected in types

    # Stored by persistence in PostgreSQL, read back over REST; the image loads from the URL a browser gets.
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        job = (await http.get(f"/v1/jobs/{job_id}")).raise_for_status().json()
        assert job["job"]["status"] == "completed"
        assert "Rooftop solar" in job["blog"]["markdown"]
        assert set(job["social"]) == {"linkedin", "x"}
        url = job["images"]["url"]
        assert url.startswith(f"http://127.0.0.1:{stack.ports['s3']}/"), url
        picture = await http.get(url, headers={"Authorization": ""})
        assert picture.status_code == 200 and picture.content[:8] == b"\x89PNG\r\n\x1a\n"

    # Every service connected as its own NATS user (the server's own account of its connections).
    connz = json.loads(stack.exec("nats", "wget", "-q", "-O", "-", "http://127.0.0.1:8222/connz?auth=1"))
    users = {
        c["name"].split(":", 1)[0]: c.get("authorized_user") for c in connz["connections"] if c.get("name")
    }
    for party in parties.SERVICES:
        assert users.get(party.name) == party.name, connz

    await _only_the_declared_producer_may_publish(stack, job_id)


async def _only_the_declared_producer_may_publish(stack: ComposeStack, job_id: str) -> None:
    """From this host, on the published NATS port: the social service's user cannot store a blog post
    (the writer's event); the outside systems' `reader` reads the job's, which is still the writer's only."""
    violations: list[str] = []

    async def record(exc: Exception) -> None:
        violations.append(str(exc).lower())

    subject = subjects.content(job_id, "blog.completed")
    social = await nats.connect(
        stack.nats_url,
        user="social",
        password=stack.nats_password("social"),
        inbox_prefix=access.inbox_prefix("social"),
        error_cb=record,
        allow_reconnect=False,
    )
    try:
        with pytest.raises(NatsError):  # no acknowledgement: the server dropped it
            await social.jetstream().publish(subject, b'{"forged": true}', timeout=2.0)
        await social.flush()
    finally:
        await social.close()
    assert any("permissions violation" in v and subject.lower() in v for v in violations), violations

    reader = await nats.connect(
        stack.nats_url,
        user=parties.READER.name,
        password=stack.nats_password(parties.READER.name),
        allow_reconnect=False,
    )
    try:
        (blog,) = await recorded(reader, job_id, "blog.completed")
        assert blog.producer.service == "writer"
    finally:
        await reader.close()
