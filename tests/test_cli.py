"""The `pressroom` client commands against real services: generate (WebSocket), jobs (REST), keys (NATS),
and the local key `pressroom up` makes."""

from __future__ import annotations

import asyncio
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import nats
import pytest

from pipeline import script_pipeline
from pressroom_devstack.ports import free_port
from pressroom_devstack.provisioning import provision_nats
from pressroom_devstack.stack import ensure_local_key
from pressroom_runtime import apikeys

TOPIC = "Rooftop solar panels for homes"
JOB_ID = re.compile(r"accepted: (\S+)")


def create_key(nats_url: str, name: str) -> str:
    async def create() -> str:
        nc = await nats.connect(nats_url)
        try:
            token, _ = await apikeys.create_key(nc, name)
            return token
        finally:
            await nc.close()

    provision_nats(nats_url)
    return asyncio.run(create())


def pressroom(home: Path, *args: str, timeout: float = 120, env: dict[str, str] | None = None):
    """Runs `pressroom ARGS` as a user would (no terminal: plain progress lines), from an empty home so
    no running stack's defaults leak in."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PRESSROOM_", "NATS_URL"))} | {
        "PRESSROOM_HOME": str(home),
        "COLUMNS": "200",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "pressroom_devstack.cli", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_generate_runs_a_job_end_to_end_and_jobs_reads_it_back(
    service_runner, scripted_llm, nats_url, tmp_path
):
    script_pipeline(scripted_llm)
    token = create_key(nats_url, "cli-test")
    service_runner.start()
    gateway = service_runner.gateway_url
    home = tmp_path / "home"

    run = pressroom(
        home, "generate", TOPIC, "-p", "linkedin", "-p", "x", "--gateway", gateway, "--token", token
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "Traceback" not in output
    job_id = JOB_ID.search(output).group(1)  # type: ignore[union-attr]
    for stage_line in ("research", "writing", "social", "image"):
        assert re.search(rf"^\s*{stage_line}  ", run.stdout, re.M), f"no {stage_line} line:\n{output}"
    assert "# Rooftop solar for everyone" in run.stdout  # the blog as it streamed
    assert f"{gateway}/v1/jobs/{job_id}" in run.stdout  # where the results are
    assert re.search(r"^image\s+https?://\S+", run.stdout, re.M), output
    assert "completed" in run.stdout

    listed = pressroom(home, "jobs", "list", "--gateway", gateway, "--token", token)
    assert listed.returncode == 0, listed.stderr
    assert job_id in listed.stdout and "completed" in listed.stdout

    shown = pressroom(home, "jobs", "show", job_id, "--markdown", "--gateway", gateway, "--token", token)
    assert shown.returncode == 0, shown.stderr
    assert "Rooftop solar for everyone" in shown.stdout
    assert "linkedin" in shown.stdout and "/280" in shown.stdout

    exported = pressroom(home, "jobs", "export", job_id, "--gateway", gateway, "--token", token)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.lstrip().startswith("---\ntitle: Rooftop solar for everyone\n")  # front matter
    archive = tmp_path / "job.zip"
    zipped = pressroom(
        home,
        "jobs",
        "export",
        job_id,
        "-f",
        "zip",
        "-o",
        str(archive),
        "--gateway",
        gateway,
        "--token",
        token,
    )
    assert zipped.returncode == 0, zipped.stderr
    assert archive.read_bytes()[:2] == b"PK"

    # Another client's key sees nothing of this job.
    other = create_key(nats_url, "someone-else")
    missing = pressroom(home, "jobs", "show", job_id, "--gateway", gateway, "--token", other)
    assert missing.returncode == 1 and "not found" in missing.stderr

    refused = pressroom(home, "generate", TOPIC, "--gateway", gateway, "--token", "prk_not-a-real-key")
    assert refused.returncode != 0
    assert "refused the API key" in refused.stderr and "Traceback" not in refused.stderr


def test_a_failed_job_exits_non_zero_with_the_reason(service_runner, scripted_llm, nats_url, tmp_path):
    scripted_llm.fail(400, times=20, message="This model refuses the request")  # permanent: no retry
    token = create_key(nats_url, "cli-test")
    service_runner.start()

    run = pressroom(
        tmp_path,
        "generate",
        TOPIC,
        "--no-research",
        "--gateway",
        service_runner.gateway_url,
        "--token",
        token,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "failed" in run.stderr and "Traceback" not in run.stderr
    assert JOB_ID.search(run.stdout)


def test_a_stopped_gateway_is_a_readable_error(tmp_path):
    gateway = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for args in (("generate", TOPIC), ("jobs", "list"), ("jobs", "show", "01J0000000000000000000000")):
        run = pressroom(tmp_path, *args, "--gateway", gateway, "--token", "prk_x", timeout=60)
        assert run.returncode == 1, (args, run.stdout, run.stderr)
        assert f"cannot reach the gateway at {gateway}" in run.stderr, run.stderr
        assert "Traceback" not in run.stdout + run.stderr


def test_defaults_come_from_the_running_stack(tmp_path):
    """With a stack.json and an api-key in PRESSROOM_HOME, no option is needed."""
    gateway = f"http://127.0.0.1:{free_port()}"
    (tmp_path / "stack.json").write_text(f'{{"gateway_url": "{gateway}", "pid": 1}}')
    run = pressroom(tmp_path, "jobs", "list")
    assert run.returncode == 1 and f"cannot reach the gateway at {gateway}" in run.stderr


def test_invalid_options_are_refused_before_connecting(tmp_path):
    run = pressroom(tmp_path, "generate", "ab", "-p", "myspace", "--gateway", "http://127.0.0.1:1")
    assert run.returncode == 1
    assert "topic" in run.stderr and "platforms[0]" in run.stderr and "Traceback" not in run.stderr


def test_keys_create_list_revoke(nats_url, tmp_path):
    provision_nats(nats_url)
    created = pressroom(tmp_path, "keys", "create", "newsroom-bot", "--nats", nats_url)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("prk_") and "not shown again" in created.stderr

    listed = pressroom(tmp_path, "keys", "list", "--nats", nats_url)
    assert listed.returncode == 0 and "newsroom-bot" in listed.stdout
    assert token not in listed.stdout
    client_id = re.search(r"(client-[0-9a-f]+)\s+│?\s*newsroom-bot", listed.stdout).group(1)  # type: ignore[union-attr]

    revoked = pressroom(tmp_path, "keys", "revoke", client_id, "--nats", nats_url)
    assert revoked.returncode == 0, revoked.stderr
    assert "newsroom-bot" not in pressroom(tmp_path, "keys", "list", "--nats", nats_url).stdout
    again = pressroom(tmp_path, "keys", "revoke", client_id, "--nats", nats_url)
    assert again.returncode == 1 and "no key" in again.stderr

    unreachable = pressroom(tmp_path, "keys", "list", "--nats", f"nats://127.0.0.1:{free_port()}")
    assert unreachable.returncode == 1 and "cannot reach NATS" in unreachable.stderr


def test_the_local_key_is_created_once_and_reused(nats_url, tmp_path):
    provision_nats(nats_url)
    path = tmp_path / "home" / "api-key"
    first = ensure_local_key(nats_url, path)
    assert first.startswith("prk_") and path.read_text().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_local_key(nats_url, path) == first

    async def revoke_local() -> None:
        nc = await nats.connect(nats_url)
        try:
            for record in await apikeys.list_keys(nc):
                if record.name == "local":
                    await apikeys.revoke(nc, record.client_id)
        finally:
            await nc.close()

    asyncio.run(revoke_local())
    renewed = ensure_local_key(nats_url, path)  # the kept key no longer works: a new one replaces it
    assert renewed != first and path.read_text().strip() == renewed


@pytest.mark.parametrize("home_has_key", [True, False])
def test_the_client_picks_up_the_local_key(tmp_path, monkeypatch, home_has_key):
    from pressroom_devstack import client

    if home_has_key:
        (tmp_path / "api-key").write_text("prk_local\n")
    monkeypatch.setenv("PRESSROOM_HOME", str(tmp_path))
    assert client.resolve_token(None) == ("prk_local" if home_has_key else None)
    assert client.resolve_token("prk_given") == "prk_given"
    assert client.resolve_gateway(None) == client.DEFAULT_GATEWAY


def test_the_stack_gives_the_gateway_page_the_local_key(nats_url, database_url, s3, scripted_llm, tmp_path):
    from rich.console import Console

    from pressroom_devstack.cli import info_table
    from pressroom_devstack.config import StackConfig
    from pressroom_devstack.stack import Stack

    env = {
        "PRESSROOM_HOME": str(tmp_path / "home"),
        "NATS_URL": nats_url,
        "DATABASE_URL": database_url,
        **s3.env(),
        "OPENAI_BASE_URL": scripted_llm.base_url,
    }
    with Stack(StackConfig.from_env(env)) as stack:
        info = stack.start(services=False)
        key = (tmp_path / "home" / "api-key").read_text().strip()
        assert info.api_key == key
        assert stack.env["PRESSROOM_GATEWAY_PAGE_TOKEN"] == key
        assert stack.env["PRESSROOM_GATEWAY_ALLOW_ANONYMOUS_LEGACY"] == "true"
        out = Console(record=True, width=200)
        out.print(info_table(info))
        assert key in out.export_text()
    with Stack(StackConfig.from_env(env)) as again:  # a second `up` on the same data: the same key
        assert again.start(services=False).api_key == key
