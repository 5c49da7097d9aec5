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
from urllib.parse import urlsplit

import nats
import psutil
import structlog
from nats.errors import Error as NatsError

from pressroom_runtime import apikeys
from pressroom_runtime.broker import nats_servers

from .config import StackConfig, ensure_knowledge_dir
from .env import LLMEndpoint, service_env
from .errors import StartupError
from .model import MODEL_ID, LocalModel
from .nats import NatsCluster, NatsServer
from .natsauth import NatsUsers
from .objectstore import S3Credentials, SeaweedS3
from .ports import is_free, load_ports, reserve, save_ports
from .postgres import Postgres
from .provisioning import provision_nats, run_sync
from .secretfile import write_secret
from .services import SERVICES, ServiceSupervisor
from .supervision import ServerSupervisor

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
    nats_url: str  # without credentials
    database_url: str
    s3: dict[str, Any]
    llm_base_url: str | None
    llm_model: str | None
    log_dir: str
    knowledge_dir: str
    gateway_url: str | None = None
    api_key: str | None = None  # the local client's key (also in PRESSROOM_HOME/api-key)
    nats_admin_url: str | None = None  # with the admin's credentials: provisioning, `pressroom keys`
    started: list[str] = field(default_factory=list)  # pieces this stack started (the rest are external)
    replicas: dict[str, int] = field(default_factory=dict)
    nats_health_urls: list[str] = field(default_factory=list)  # embedded pieces' health checks, for `status`
    model_health_url: str | None = None
    processes: dict[str, dict[str, Any]] = field(default_factory=dict)  # replica name -> pid, health_url
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)  # embedded server -> restarts, given_up


class Stack:
    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig.from_env()
        self.paths = self.config.paths
        self.nats: NatsServer | NatsCluster | None = None
        self.postgres: Postgres | None = None
        self.objectstore: SeaweedS3 | None = None
        self.model: LocalModel | None = None
        self.services: ServiceSupervisor | None = None
        self.servers = ServerSupervisor()  # the embedded servers started here, restarted when they die
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
        self.servers = ServerSupervisor()
        paths.logs.mkdir(parents=True, exist_ok=True)
        if with_services and not is_free(cfg.gateway_port, cfg.gateway_host):
            raise StartupError(
                "gateway", f"{cfg.gateway_host}:{cfg.gateway_port} is in use; set PRESSROOM_GATEWAY_PORT"
            )
        # Free now, bound only once the gateway starts: no other piece may be given it meanwhile.
        reserve(cfg.gateway_port)

        # Ports chosen before are preferred again, so clients outside the stack keep their settings.
        kept = load_ports(paths.ports)
        chosen: dict[str, object] = dict(kept)
        nats_url = cfg.nats_url
        users: NatsUsers | None = None
        stream_replicas = 1
        if nats_url is None:
            users = NatsUsers.load_or_create(paths.nats_users)
            self.nats = self._embedded_nats(users, kept.get("nats"))
            nats_url = self._start_piece("nats", self.nats)
            chosen["nats"] = _ports_of(self.nats)
            stream_replicas = min(3, cfg.nats_cluster)
        # An external NATS: its URL carries whatever credentials provisioning needs.
        admin_url = users.url(nats_url) if users else nats_url

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
                preferred_s3_port=_port(kept.get("s3"), 8333),
            )
            s3 = self._start_piece("s3", self.objectstore)
            chosen["s3"] = int(s3.endpoint.rsplit(":", 1)[1])

        if cfg.local_model:
            self.model = LocalModel(
                paths.models, paths.logs / "model.log", preferred_port=_port(kept.get("model"), 8080)
            )
            base_url = self._start_piece("model", self.model)
            chosen["model"] = urlsplit(base_url).port
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

        if chosen != kept:
            save_ports(paths.ports, chosen)
        provision_nats(admin_url, stream_replicas)
        api_key = ensure_local_key(admin_url, paths.api_key)
        # The page served by the gateway starts with the local key, and the original /content clients
        # (which know nothing of keys) keep working on this loopback-only stack.
        self.env["PRESSROOM_GATEWAY_PAGE_TOKEN"] = api_key
        self.env["PRESSROOM_GATEWAY_ALLOW_ANONYMOUS_LEGACY"] = "true"

        gateway_url: str | None = None
        if with_services:
            self.services = ServiceSupervisor(
                self.env, paths.logs, gateway_port=cfg.gateway_port, nats_users=users
            )
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
            nats_admin_url=admin_url,
            started=[name for name, _ in self._started],
            replicas={s: replicas.get(s, 1) for s in SERVICES} if with_services else {},
            nats_health_urls=self.nats.health_urls if self.nats else [],
            model_health_url=f"{llm.base_url.removesuffix('/v1')}/health"
            if self.model and llm.base_url
            else None,
            processes=self._processes(),
            servers=self.servers.describe(),
        )
        self._write_state(self.info)
        return self.info

    def _processes(self) -> dict[str, dict[str, Any]]:
        if self.services is None:
            return {}
        return {r.name: r.describe() for r in self.services.replicas.values()}

    def heal(self) -> list[str]:
        """Restarts the embedded servers that died, then the services that exited, each after its backoff
        (see supervision.py and services.py); returns what happened, one line per event."""
        if self.info is None:
            return []
        notes = self.servers.heal()
        if self.services is not None:
            notes += self.services.heal()
        if notes:
            self.info.processes = self._processes()
            self.info.servers = self.servers.describe()
            self._write_state(self.info)
        return notes

    def _embedded_nats(self, users: NatsUsers, kept: object) -> NatsServer | NatsCluster:
        cfg, paths = self.config, self.paths
        if cfg.nats_cluster <= 1:
            return NatsServer(
                paths.nats, paths.logs / "nats.log", preferred_port=_port(kept, 4222), users=users
            )
        ports = kept if isinstance(kept, list) and len(kept) == cfg.nats_cluster else None
        if ports is not None and not all(isinstance(p, int) and is_free(p) for p in ports):
            ports = None
        return NatsCluster(paths.nats, paths.logs, cfg.nats_cluster, users=users, ports=ports)

    def _start_piece(self, name: str, piece: _Piece[T]) -> T:
        # Tracked before start(): an interrupt mid-start still gets it stopped (stop() is always safe).
        self._started.append((name, piece))
        result = piece.start()
        log.info("started", piece=name)
        if isinstance(piece, NatsCluster):
            for i, node in enumerate(piece.nodes):
                self.servers.watch(f"{name} node-{i}", node)
        elif isinstance(piece, NatsServer | Postgres | SeaweedS3 | LocalModel):
            self.servers.watch(name, piece)
        return result

    def stop(self) -> None:
        """Stops what this stack started: services first (they use the rest), then the servers in parallel.
        One failing stop does not skip the others."""
        started, self._started = self._started, []
        self.servers.stopped = True
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
        write_secret(self.paths.state_file, json.dumps(asdict(info), indent=2))

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
        nc = await nats.connect(
            nats_servers(nats_url), connect_timeout=5, max_reconnect_attempts=3, allow_reconnect=False
        )
        try:
            kept = _read_key(path)
            if kept and await apikeys.lookup(nc, kept) is not None:
                return kept
            token, record = await apikeys.create_key(nc, LOCAL_CLIENT)
            log.info("api key created", client=LOCAL_CLIENT, client_id=record.client_id, path=str(path))
        finally:
            await nc.close()
        write_secret(path, token + "\n")
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


def _port(kept: object, default: int) -> int:
    return kept if isinstance(kept, int) else default


def _ports_of(nats: NatsServer | NatsCluster) -> int | list[int]:
    if isinstance(nats, NatsCluster):
        return [int(node.port or 0) for node in nats.nodes]
    return int(nats.port or 0)


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
