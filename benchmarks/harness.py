"""What the runtime benchmarks share: the embedded stack on a fake provider, a job driver on NATS, the
machine description and the results file.

Jobs are started the way the gateway starts them (the job-state entry first, then job.requested on the
stream) and timed until their job.completed / job.failed arrives on the bus, so the figures are the
pipeline's (five services, NATS, PostgreSQL, S3, the provider over HTTP), not the gateway's WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import psutil
from nats.aio.msg import Msg

from pressroom_contracts import subjects
from pressroom_contracts.events import TERMINAL_TYPES, JobRequested, JobRequestedEvent, Producer, encode_event
from pressroom_contracts.ids import new_job_id
from pressroom_contracts.jobs import JobRequest
from pressroom_contracts.jobstate import JobState
from pressroom_contracts.topology import JOBS_BUCKET
from pressroom_devstack.config import StackConfig
from pressroom_devstack.health import http_ok
from pressroom_devstack.ports import free_port
from pressroom_devstack.process import ManagedProcess
from pressroom_devstack.stack import Stack, StackInfo

RESULTS = Path(__file__).parent / "results"
PRODUCER = Producer(service="gateway", replica="bench")
OWNER = "bench"


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu_model": model or platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "system": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def cpu_seconds(home: str) -> dict[str, float]:
    """CPU time (user + system) used so far by this process (the load generator) and by every process of
    the stack in `home`, by piece: each service, NATS, PostgreSQL (all its backends: pg_ctl detaches
    them from us, so they are found by their data folder), SeaweedFS, the fake provider."""
    me = psutil.Process()
    roots = [me]
    for process in psutil.process_iter(["cmdline"]):
        if process.pid != me.pid and home in " ".join(process.info["cmdline"] or ()):
            roots.append(process)
    found = {p.pid: p for root in roots for p in [root, *_descendants(root)]}
    totals: dict[str, float] = {}
    for process in found.values():
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            piece = "load generator" if process.pid == me.pid else _piece(" ".join(process.cmdline()))
            totals[piece] = totals.get(piece, 0.0) + times.user + times.system
    return totals


def _descendants(process: psutil.Process) -> list[psutil.Process]:
    try:
        return process.children(recursive=True)
    except psutil.Error:
        return []


def _piece(command: str) -> str:
    for marker, piece in (("pressroom_", ""), ("nats-server", "nats"), ("postgres", "postgres"),
                          ("weed", "s3"), ("fake_provider", "fake provider")):  # fmt: skip
        if marker in command:
            return piece or command.split(marker, 1)[1].split()[0]
    return "other"


def cpu_per_job(before: dict[str, float], after: dict[str, float], jobs: int) -> dict[str, float]:
    """Milliseconds of CPU per job by piece between two cpu_seconds(), busiest first, and the total."""
    used = {piece: after[piece] - before.get(piece, 0.0) for piece in after}
    per_job = {piece: round(1000 * seconds / max(jobs, 1), 1) for piece, seconds in used.items()}
    ranked = dict(sorted(per_job.items(), key=lambda item: -item[1]))
    return {**ranked, "total": round(sum(per_job.values()), 1)}


def write_result(name: str, record: dict[str, Any], output: Path | None = None) -> Path:
    path = output or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    full = {"benchmark": name, "measured_at": datetime.now(UTC).isoformat(timespec="seconds"), **record}
    full["machine"] = machine()
    path.write_text(json.dumps(full, indent=2) + "\n")
    return path


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)

    return {"p50": round(statistics.median(ordered), 4), "p90": at(0.9), "p99": at(0.99), "max": ordered[-1]}


@contextlib.contextmanager
def fake_provider(delay: float, log_dir: Path) -> Iterator[str]:
    """The benchmark's provider as its own process; yields its OPENAI_BASE_URL."""
    port = free_port()
    process = ManagedProcess(
        "fake-provider",
        [
            sys.executable,
            str(Path(__file__).parent / "fake_provider.py"),
            "--port",
            str(port),
            "--delay",
            str(delay),
        ],
        log_dir / "fake-provider.log",
        grace=3.0,
    )
    log_dir.mkdir(parents=True, exist_ok=True)
    process.start()
    try:
        deadline = time.monotonic() + 30
        while not http_ok(f"http://127.0.0.1:{port}/v1/models"):
            if time.monotonic() > deadline or not process.alive():
                raise RuntimeError(f"the fake provider did not start: see {process.log_path}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.stop()


@contextlib.contextmanager
def embedded_stack(
    *, delay: float, replicas: Mapping[str, int] | None = None, env: Mapping[str, str] | None = None
) -> Iterator[tuple[Stack, StackInfo]]:
    """NATS, PostgreSQL, SeaweedFS and every service in a temporary home, on the fake provider."""
    with tempfile.TemporaryDirectory(prefix="pressroom-bench-") as home:
        os.chmod(home, 0o755)  # as root, pgserver's postgres user must traverse it
        with fake_provider(delay, Path(home) / "logs") as base_url:
            environ = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("OPENAI_", "S3_", "NATS_", "DATABASE_", "PRESSROOM_"))
            }
            environ |= {
                "PRESSROOM_HOME": home,
                "PRESSROOM_GATEWAY_PORT": str(free_port()),
                "OPENAI_BASE_URL": base_url,
                "OPENAI_API_KEY": "bench",
                "PRESSROOM_LLM_MODEL": "fake-model",
                "PRESSROOM_LLM_PROFILE": "chat",
                "PRESSROOM_LOG_LEVEL": "WARNING",
                **(env or {}),
            }
            stack = Stack(StackConfig.from_env(environ))
            try:
                info = stack.start(replicas=dict(replicas or {}))
                # The driver starts jobs as the gateway does and reads the whole stream: as the admin.
                yield stack, replace(info, nats_url=info.nats_admin_url or info.nats_url)
            finally:
                stack.stop()


@dataclass
class Run:
    job_id: str
    started: float
    ended: float | None = None
    outcome: str | None = None

    @property
    def seconds(self) -> float:
        return (self.ended or time.perf_counter()) - self.started


@dataclass
class JobDriver:
    """Starts jobs as the gateway does and notes when each one ends."""

    nats_url: str
    runs: dict[str, Run] = field(default_factory=dict)
    _ended: dict[str, asyncio.Event] = field(default_factory=dict)

    async def __aenter__(self) -> JobDriver:
        self.nc = await nats.connect(self.nats_url)
        self.js = self.nc.jetstream()
        self.kv = await self.js.key_value(JOBS_BUCKET.name)
        self.sub = await self.nc.subscribe(subjects.content_of_type("job.*"), cb=self._on_event)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.sub.unsubscribe()
        await self.nc.close()

    async def _on_event(self, msg: Msg) -> None:
        job_id, event_type = subjects.parse_content(msg.subject)
        run = self.runs.get(job_id)
        if run is None or event_type not in TERMINAL_TYPES or run.ended is not None:
            return
        run.ended, run.outcome = time.perf_counter(), event_type
        self._ended[job_id].set()

    async def start(self, request: JobRequest) -> Run:
        job_id = new_job_id()
        run = Run(job_id, time.perf_counter())
        self.runs[job_id] = run
        self._ended[job_id] = asyncio.Event()
        event = JobRequestedEvent(
            job_id=job_id, producer=PRODUCER, data=JobRequested(request=request, owner=OWNER)
        )
        await self.kv.create(job_id, JobState(owner=OWNER).encode())
        await self.js.publish(
            subjects.content(job_id, event.type),
            encode_event(event),
            headers={"Nats-Msg-Id": event.dedup_key()},
            stream=subjects.STREAM,
        )
        return run

    async def finish(self, run: Run, timeout: float) -> Run:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ended[run.job_id].wait(), timeout)
        return run

    async def one(self, request: JobRequest, timeout: float) -> Run:
        return await self.finish(await self.start(request), timeout)


def outcomes(runs: list[Run]) -> dict[str, int]:
    counts = {"completed": 0, "failed": 0, "cancelled": 0, "lost": 0}
    for run in runs:
        key = run.outcome.removeprefix("job.") if run.outcome else "lost"
        counts[key] += 1
    return counts
