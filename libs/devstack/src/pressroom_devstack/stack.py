"""The whole embedded stack: NATS, PostgreSQL, S3, the local model and the services.

start() brings up only what the configuration does not supply from outside, provisions JetStream,
then starts the services; if anything fails half way, everything already started is stopped again.
stop() stops exactly what this object started, in reverse order.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import nats
import psutil
import structlog
from nats.errors import Error as NatsError

from pressroom_runtime import apikeys

from .config import StackConfig, ensure_knowledge_dir
from .env import LLMEndpoint, service_env
from .errors import StartupError
from .model import MODEL_ID, LocalModel
from .nats import NatsServer
from .objectstore import S3Credentials, SeaweedS3
from .ports import is_free
from .postgres import Postgres
from .provisioning import provision_nats, run_sync
from .services import SERVICES, ServiceSupervisor

log = structlog.get_logger(__name__)

LOCAL_CLIENT = "local"


T = TypeVar("T", covariant=True)


class _Stoppable(Protocol):
    def stop(self) -> None: ...


class _Piece(_Stoppable, Protocol[T]):
    def start(self) -> T: ...


@dataclass
class StackInfo:
    """Where everything is. Written to PRESSROOM_HOME/stack.json for `pressroom status`."""

    home: str
    pid: int
    nats_url: str
    database_url: str
    s3: dict[str, Any]
    llm_base_url: str | None
    llm_model: str | None
    log_dir: str
    knowledge_dir: str
    gateway_url: str | None = None
    api_key: str | None = None  # the local client's key (also in PRESSROOM_HOME/api-key)
    started: list[str] = field(default_factory=list)  # pieces this stack started (the rest are external)
    replicas: dict[str, int] = field(default_factory=dict)


class Stack:
    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig.from_env()
        self.paths = self.config.paths
        self.nats: NatsServer | None = None
        self.postgres: Postgres | None = None
        self.objectstore: SeaweedS3 | None = None
        self.model: LocalModel | None = None
        self.services: ServiceSupervisor | None = None
        self.info: StackInfo | None = None
        self.env: dict[str, str] = {}
        self._started: list[tuple[str, _Stoppable]] = []

    def start(self, *, services: bool = True, replicas: Mapping[str, int] | None = None) -> StackInfo:
        self._refuse_if_running()
        try:
            return self._start(services, dict(replicas or {}))
        except BaseException:
            self.stop()
            raise

    def _start(self, with_services: bool, replicas: dict[str, int]) -> StackInfo:
        cfg, paths = self.config, self.paths
        paths.logs.mkdir(parents=True, exist_ok=True)
        if with_services and not is_free(cfg.gateway_port, cfg.gateway_host):
            raise StartupError(
                "gateway", f"{cfg.gateway_host}:{cfg.gateway_port} is in use; set PRESSROOM_GATEWAY_PORT"
            )

        nats_url = cfg.nats_url
        if nats_url is None:
            self.nats = NatsServer(paths.nats, paths.logs / "nats.log", preferred_port=4222)
            nats_url = self._start_piece("nats", self.nats)

        database_url = cfg.database_url
        if database_url is None:
            self.postgres = Postgres(paths.pg, paths.logs / "postgres.log")
            database_url = self._start_piece("postgres", self.postgres)

        s3 = cfg.s3
        if s3 is None:
            self.objectstore = SeaweedS3(
                paths.s3_data,
                paths.logs / "s3.log",
                bucket=cfg.s3_bucket,
                credentials=S3Credentials.load_or_create(paths.s3_credentials),
                preferred_s3_port=8333,
            )
            s3 = self._start_piece("s3", self.objectstore)

        if cfg.local_model:
            self.model = LocalModel(paths.models, paths.logs / "model.log", preferred_port=8080)
            base_url = self._start_piece("model", self.model)
            llm = LLMEndpoint(base_url=base_url, api_key="local", model=MODEL_ID, profile="completion")
        else:
            # Model and profile: whatever PRESSROOM_LLM_* the environment carries (passed through).
            llm = LLMEndpoint(base_url=cfg.openai_base_url, api_key=cfg.openai_api_key)

        knowledge_dir = ensure_knowledge_dir(cfg)
        self.env = service_env(
            cfg.environ,
            nats_url=nats_url,
            database_url=database_url,
            s3=s3,
            llm=llm,
            tavily_api_key=cfg.tavily_api_key,
            knowledge_dir=knowledge_dir,
            home=paths.home,
            gateway_host=cfg.gateway_host,
        )
        if self.model is not None:
            # The writer takes as many posts at once as the model server has slots (xllamacpp n_parallel).
            self.env.setdefault("PRESSROOM_WRITER_CONCURRENCY", str(self.model.parallel))

        provision_nats(nats_url)
        api_key = ensure_local_key(nats_url, paths.api_key)
        # The page served by the gateway starts with the local key, and the original /content clients
        # (which know nothing of keys) keep working on this loopback-only stack.
        self.env["PRESSROOM_GATEWAY_PAGE_TOKEN"] = api_key
        self.env["PRESSROOM_GATEWAY_ALLOW_ANONYMOUS_LEGACY"] = "true"

        gateway_url: str | None = None
        if with_services:
            self.services = ServiceSupervisor(self.env, paths.logs, gateway_port=cfg.gateway_port)
            self._started.append(("services", self.services))
            self.services.start(SERVICES, replicas)
            gateway_url = self.services.gateway_url

        self.info = StackInfo(
            home=str(paths.home),
            pid=os.getpid(),
            nats_url=nats_url,
            database_url=database_url,
            s3=asdict(s3),
            llm_base_url=llm.base_url,
            llm_model=self.env.get("PRESSROOM_LLM_MODEL"),
            log_dir=str(paths.logs),
            knowledge_dir=str(knowledge_dir),
            gateway_url=gateway_url,
            api_key=api_key,
            started=[name for name, _ in self._started],
            replicas={s: replicas.get(s, 1) for s in SERVICES} if with_services else {},
        )
        self._write_state(self.info)
        return self.info

    def _start_piece(self, name: str, piece: _Piece[T]) -> T:
        # Tracked before start(): an interrupt mid-start still gets it stopped (stop() is always safe).
        self._started.append((name, piece))
        result = piece.start()
        log.info("started", piece=name)
        return result

    def stop(self) -> None:
        """Stops what this stack started: services first (they use the rest), then the servers in parallel.
        One failing stop does not skip the others."""
        started, self._started = self._started, []
        services = [(n, p) for n, p in started if n == "services"]
        servers = [(n, p) for n, p in started if n != "services"]
        for name, piece in services:
            _stop_logged(name, piece)
        if servers:
            with ThreadPoolExecutor(max_workers=len(servers)) as pool:
                list(pool.map(lambda item: _stop_logged(*item), servers))
        if self.info is not None:
            with contextlib.suppress(OSError):
                self.paths.state_file.unlink()
            self.info = None

    def _refuse_if_running(self) -> None:
        state = read_state(self.paths.state_file)
        if state and state.get("pid") != os.getpid() and psutil.pid_exists(int(state.get("pid", 0))):
            raise StartupError(
                "pressroom",
                f"a stack already runs from {self.paths.home} (pid {state['pid']}); stop it first",
            )

    def _write_state(self, info: StackInfo) -> None:
        # Holds the S3 secret, so it gets the same protection as the credentials file.
        path = self.paths.state_file
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(asdict(info), out, indent=2)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop_logged(name: str, piece: _Stoppable) -> None:
    try:
        piece.stop()
        log.info("stopped", piece=name)
    except Exception:
        log.exception("stop failed", piece=name)


def ensure_local_key(nats_url: str, path: Path) -> str:
    """The API key of the client "local": the one kept in `path` while NATS still knows it, else a new one
    written there (0600). So every `pressroom up` on the same data prints the same key."""

    async def ensure() -> str:
        nc = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=3, allow_reconnect=False)
        try:
            kept = _read_key(path)
            if kept and await apikeys.lookup(nc, kept) is not None:
                return kept
            token, record = await apikeys.create_key(nc, LOCAL_CLIENT)
            log.info("api key created", client=LOCAL_CLIENT, client_id=record.client_id, path=str(path))
        finally:
            await nc.close()
        _write_secret(path, token + "\n")
        return token

    try:
        return run_sync(ensure())
    except (OSError, apikeys.KeyStoreMissing, NatsError) as exc:
        raise StartupError("api key", f"could not ensure the local API key: {exc}") from exc


def _read_key(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
