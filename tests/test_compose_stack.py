"""docker-compose.yml brought up for real (podman, podman-compose) and a job run through it end to end.

What runs is the committed compose file with every service image built from the repository; only the
infrastructure images are local stand-ins (tests/compose_stack.py says which and why), and the text
model is the suite's scripted OpenAI-compatible server reached by OPENAI_BASE_URL alone, with no key.
The first API key comes from the documented command inside the gateway container. Skipped, with the
reason, where no container engine can run.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import httpx
import pytest
import websockets
from compose_stack import ComposeStack, ensure_images, missing_engine

from pressroom_devstack.ports import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(3600),
    pytest.mark.skipif(missing_engine() is not None, reason=str(missing_engine())),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    started = time.monotonic()
    spent = ensure_images()
    ports = {name: free_port() for name in ("gateway", "s3", "nats")}
    compose = ComposeStack(
        project=f"prtest{ports['gateway']}", workdir=tmp_path_factory.mktemp("compose"), ports=ports
    )
    try:
        compose.up()
        print(f"\ncompose stack up in {time.monotonic() - started:.0f} s; image steps (s): {spent}")
        yield compose
    finally:
        compose.down()


async def test_a_job_runs_through_the_compose_stack(stack: ComposeStack) -> None:
    # The first API key, as the README says: the command inside the gateway image.
    token = stack.exec("gateway", "python", "-m", "pressroom_gateway.keys", "create", "compose test").strip()
    assert re.fullmatch(r"prk_\S+", token), token

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
