"""docker-compose.yml run for real with podman and podman-compose, where no image registry can be reached.

Images:
- a Python base built from a debootstrap root filesystem (Debian 12's Python 3.11 stands in for
  python:3.11-slim), then the one Pressroom image from deploy/docker/Dockerfile with BASE_IMAGE pointing
  at it; pip inside the build trusts this machine's CA bundle, mounted read-only, never copied;
- stand-ins for the three infrastructure images, on the same base: nats-server and weed, the binaries the
  workspace lock installs in .venv, and Debian's PostgreSQL behind the postgres image's environment contract.
Everything is kept under one stable directory, CACHE_DIR (PRESSROOM_CONTAINER_CACHE): the root filesystem
as a tar file, podman's own store (its configuration points there) with every image and layer. A cold
run (no CACHE_DIR) builds them all once; later runs reuse the layers and rebuild only what changed. CI
may keep CACHE_DIR between runs; deleting it makes the next run cold again.

podman 4.3 (Debian 12) neither runs healthchecks without systemd nor waits for `service_healthy`, so `up`
follows the compose file's start order itself: infrastructure, until each one's own healthcheck passes
(`podman healthcheck run`), then provisioning to completion, then the services until theirs pass.
"""

from __future__ import annotations

import hashlib
import os
import resource
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pressroom_contracts import access

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "tests" / "compose"
CACHE_DIR = Path(os.environ.get("PRESSROOM_CONTAINER_CACHE", "/var/tmp/pressroom-containers"))
ROOTFS_TAR = CACHE_DIR / "rootfs-bookworm-minbase.tar"  # debootstrap's output, kept across runs
ROOTFS_IMAGE = "localhost/pressroom-rootfs:bookworm"
BASE_IMAGE = "localhost/pressroom-python:3.11"
IMAGE = "pressroom/pressroom:dev"  # the compose file's image for every service
STANDINS = {
    "nats": "localhost/pressroom-standin-nats:test",
    "postgres": "localhost/pressroom-standin-postgres:test",
    "s3": "localhost/pressroom-standin-seaweedfs:test",
}
SERVICES = sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))
INFRA = ("nats", "postgres", "s3")
# Run-time state on tmpfs, one directory per CACHE_DIR, so that two caches never share a store's locks.
RUN_DIR = Path("/run") / f"pressroom-containers-{hashlib.sha256(str(CACHE_DIR).encode()).hexdigest()[:8]}"
CONTAINERS_CONF = f"""\
# runc (crun refuses this machine's cgroup layout), cgroupfs, and no ulimits podman may not set here.
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
tmp_dir = "{RUN_DIR}/libpod"
"""
STORAGE_CONF = f"""\
# podman's images and containers for the compose test, under its cache directory.
[storage]
driver = "overlay"
graphroot = "{CACHE_DIR}/storage"
runroot = "{RUN_DIR}/storage"
"""


def missing_engine() -> str | None:
    """Why the stack cannot run here, or None."""
    for tool in ("podman", "runc", "debootstrap"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install podman runc debootstrap)"
    if not (Path(sys.executable).parent / "podman-compose").exists():
        return "podman-compose is not installed in the virtual environment (make install)"
    if os.geteuid() != 0:
        return "rootful podman is needed (debootstrap, bridge networks)"
    return None


def _env() -> dict[str, str]:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    for variable, name, text in (
        ("CONTAINERS_CONF", "containers.conf", CONTAINERS_CONF),
        ("CONTAINERS_STORAGE_CONF", "storage.conf", STORAGE_CONF),
    ):
        conf = CACHE_DIR / name
        if not conf.exists() or conf.read_text() != text:
            conf.write_text(text)
        env[variable] = str(conf)
    return env


def run(argv: Sequence[str], *, timeout: float = 600, check: bool = True, **kw: Any) -> str:
    result = subprocess.run(
        list(argv),
        env=kw.pop("env", _env()),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kw,
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


def podman(*args: str, **kw: Any) -> str:
    return run(["podman", *args], **kw)


def image_exists(name: str) -> bool:
    return subprocess.run(["podman", "image", "exists", name], env=_env(), check=False).returncode == 0


def _host_ca_bundle() -> Path:
    for candidate in (os.environ.get("PIP_CERT"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise RuntimeError("no CA bundle to hand to pip inside the build")


def build(tag: str, containerfile: Path, context: Path, args: dict[str, str], *, pip: bool = False) -> None:
    """Builds `tag`, reusing cached layers; the image it replaces is removed, so disk use stays bounded."""
    previous = podman("image", "inspect", "--format", "{{.Id}}", tag, check=False).strip()
    argv = ["build", "-q", "-f", str(containerfile), "-t", tag]
    for key, value in args.items():
        argv += ["--build-arg", f"{key}={value}"]
    if pip:
        argv += ["-v", f"{_host_ca_bundle()}:/run/host-ca.crt:ro", "--build-arg", "PIP_CERT=/run/host-ca.crt"]
    built = podman(*argv, str(context), timeout=1800).strip().splitlines()[-1]
    if previous and not built.startswith(previous[:12]):
        podman("rmi", previous, check=False)  # fails harmlessly while a container still uses it


def ensure_images() -> dict[str, dict[str, float]]:
    """Every image the stack needs. Returns, per step, its seconds and the CPU seconds of the processes
    it ran (what the step costs whatever else the machine is doing): what a cold run costs."""
    spent: dict[str, dict[str, float]] = {}

    def step(name: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        start, cpu = time.monotonic(), _children_cpu()
        fn(*args, **kwargs)
        spent[name] = {"s": round(time.monotonic() - start, 1), "cpu_s": round(_children_cpu() - cpu, 1)}

    if not image_exists(ROOTFS_IMAGE):
        step("rootfs", _import_rootfs)
    if not image_exists(BASE_IMAGE):
        step("base", build, BASE_IMAGE, HERE / "base.Containerfile", HERE, {"ROOTFS": ROOTFS_IMAGE})
    # Always: the layer cache makes an unchanged image a no-op.
    step(
        "pressroom",
        build,
        IMAGE,
        ROOT / "deploy/docker/Dockerfile",
        ROOT,
        {"BASE_IMAGE": BASE_IMAGE},
        pip=True,
    )
    step("stand-ins", _build_standins)
    return spent


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _import_rootfs() -> None:
    """Debian 12 (minbase) as an image; debootstrap runs only when CACHE_DIR has no tar of it yet."""
    if not ROOTFS_TAR.exists():
        rootfs = CACHE_DIR / "rootfs.partial"
        shutil.rmtree(rootfs, ignore_errors=True)
        run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs)], timeout=1200)
        partial = ROOTFS_TAR.with_suffix(".partial")
        run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], timeout=600)
        partial.rename(ROOTFS_TAR)  # complete, or absent: an interrupted run is never reused
        shutil.rmtree(rootfs, ignore_errors=True)
    podman("import", str(ROOTFS_TAR), ROOTFS_IMAGE, timeout=600)


def _build_standins() -> None:
    build(STANDINS["postgres"], HERE / "postgres.Containerfile", HERE, {"BASE": BASE_IMAGE})
    venv_bin = Path(sys.executable).parent
    for name, binary, target in (
        ("nats", "nats-server", "/usr/local/bin/nats-server"),
        ("s3", "weed", "/usr/bin/weed"),
    ):
        context = CACHE_DIR / f"context-{name}"
        context.mkdir(exist_ok=True)
        shutil.copy2(venv_bin / binary, context / binary)
        build(
            STANDINS[name],
            HERE / "binary.Containerfile",
            context,
            {"BASE": BASE_IMAGE, "BINARY": binary, "TARGET": target},
        )


def _nats_passwords(path: Path) -> dict[str, str]:
    run([sys.executable, str(ROOT / "deploy/nats/passwords.py"), str(path)], env=dict(os.environ))
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


@dataclass
class ComposeStack:
    """One compose project: docker-compose.yml plus an override that swaps in the stand-ins and the model."""

    project: str
    workdir: Path
    ports: dict[str, int]

    def __post_init__(self) -> None:
        self.env = {
            **_env(),
            "POSTGRES_PASSWORD": secrets.token_urlsafe(16),
            "S3_ACCESS_KEY": "PR" + secrets.token_hex(8).upper(),
            "S3_SECRET_KEY": secrets.token_urlsafe(24),
            # An OpenAI-compatible server and no key, as with Ollama or vLLM.
            "OPENAI_BASE_URL": "http://llm:8090/v1",
            "PRESSROOM_GATEWAY_PUBLISH_PORT": str(self.ports["gateway"]),
            "S3_PUBLISH_PORT": str(self.ports["s3"]),
            "S3_PUBLIC_ENDPOINT": f"127.0.0.1:{self.ports['s3']}",
            "NATS_PUBLISH_PORT": str(self.ports["nats"]),
            # One per NATS user, made as .env.example says (deploy/nats/passwords.py).
            **_nats_passwords(self.workdir / "nats-passwords.env"),
        }
        for name in (
            "OPENAI_API_KEY",
            "TAVILY_API_KEY",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "PRESSROOM_GATEWAY_JWT_SECRET",
        ):
            self.env.pop(name, None)
        override = {
            "services": {
                **{name: {"image": image} for name, image in STANDINS.items()},
                "llm": {
                    "image": IMAGE,
                    "command": ["python", "/opt/llm/llm_server.py"],
                    "volumes": [
                        f"{ROOT}/libs/testkit/src/pressroom_testkit/scripted_llm.py:/opt/llm/scripted_llm.py:ro",
                        f"{HERE}/llm_server.py:/opt/llm/llm_server.py:ro",
                    ],
                },
            }
        }
        self.override = self.workdir / "compose.test.yml"
        self.override.write_text(yaml.safe_dump(override))

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.ports['nats']}"

    def nats_password(self, user: str) -> str:
        return self.env[access.password_variable(user)]

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        argv = [str(Path(sys.executable).parent / "podman-compose"), "-p", self.project]
        argv += ["-f", str(ROOT / "docker-compose.yml"), "-f", str(self.override), *args]
        return run(argv, env=self.env, timeout=timeout, check=check, cwd=ROOT, stdin=subprocess.DEVNULL)

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"

    def wait_healthy(self, services: Sequence[str], timeout: float = 180) -> None:
        """Runs each container's own compose healthcheck until it passes (what `service_healthy` means)."""
        deadline = time.monotonic() + timeout
        for service in services:
            while not self.healthy(service):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{service} is not healthy:\n{self.logs(service)}")
                time.sleep(2)

    def healthy(self, service: str) -> bool:
        check = ["podman", "healthcheck", "run", self.container(service)]
        return (
            subprocess.run(check, env=self.env, capture_output=True, check=False, timeout=60).returncode == 0
        )

    def up(self) -> None:
        self.compose("up", "-d", "--no-build", *INFRA, "llm")
        self.wait_healthy(INFRA)
        self.compose("up", "-d", "--no-build", "--no-deps", "provision")
        code = podman("wait", self.container("provision"), timeout=180).strip()
        if code != "0":
            raise RuntimeError(f"provisioning exited {code}:\n{self.logs('provision')}")
        self.compose("up", "-d", "--no-build", "--no-deps", *SERVICES)
        self.wait_healthy(SERVICES)

    def exec(self, service: str, *argv: str) -> str:
        return podman("exec", self.container(service), *argv, timeout=120)

    def logs(self, service: str) -> str:
        return run(["podman", "logs", "--tail", "60", self.container(service)], check=False, timeout=60)

    def down(self) -> None:
        self.compose("down", "-v", "-t", "10", timeout=300, check=False)
