"""What the embedded stack starts and what it takes from outside, read from the environment.

A piece given by its usual setting (NATS_URL, DATABASE_URL, S3_ENDPOINT, OPENAI_BASE_URL/OPENAI_API_KEY)
is used as is and not started.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pressroom_cli.settings import DEFAULT_HOME, HOME_ENV, KEY_FILE, STATE_FILE

from .objectstore import S3Info
from .services import DEFAULT_GATEWAY_PORT

DEFAULT_BUCKET = "pressroom-images"
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class StackPaths:
    """Layout of PRESSROOM_HOME (default ./.pressroom). Everything survives restarts."""

    home: Path

    @property
    def nats(self) -> Path:
        return self.home / "nats"

    @property
    def nats_users(self) -> Path:
        """Generated NATS passwords, one per user (0600); nats-server's configuration has their hashes."""
        return self.nats / "users.json"

    @property
    def pg(self) -> Path:
        return self.home / "pg"

    @property
    def s3(self) -> Path:
        return self.home / "s3"

    @property
    def s3_data(self) -> Path:
        return self.s3 / "data"

    @property
    def s3_credentials(self) -> Path:
        return self.s3 / "credentials.json"

    @property
    def models(self) -> Path:
        return self.home / "models"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def knowledge(self) -> Path:
        return self.home / "knowledge"

    @property
    def state_file(self) -> Path:
        return self.home / STATE_FILE  # read by the client for its default gateway

    @property
    def ports(self) -> Path:
        """The ports chosen on the first start, preferred on every later one."""
        return self.home / "ports.json"

    @property
    def api_key(self) -> Path:
        """The local client's API key (0600), created by the first `pressroom up` and reused."""
        return self.home / KEY_FILE


@dataclass(frozen=True)
class StackConfig:
    paths: StackPaths
    nats_url: str | None = None
    database_url: str | None = None
    s3: S3Info | None = None  # an external S3; None starts SeaweedFS
    s3_bucket: str = DEFAULT_BUCKET
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    tavily_api_key: str | None = None
    knowledge_dir: Path | None = None  # None: PRESSROOM_HOME/knowledge, seeded with the sample documents
    gateway_host: str = "127.0.0.1"
    gateway_port: int = DEFAULT_GATEWAY_PORT
    nats_cluster: int = 1  # embedded NATS servers: 1, or a JetStream cluster of 3 (or 5)
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)  # passed on to services

    @property
    def local_model(self) -> bool:
        """No base URL and no key: nothing to talk to but the embedded model."""
        return not self.openai_base_url and not self.openai_api_key

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StackConfig:
        env = dict(os.environ if environ is None else environ)

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        bucket = get("S3_BUCKET") or DEFAULT_BUCKET
        s3: S3Info | None = None
        endpoint = get("S3_ENDPOINT")
        if endpoint:
            s3 = S3Info(
                endpoint=endpoint,
                access_key=get("S3_ACCESS_KEY") or get("AWS_ACCESS_KEY_ID") or "",
                secret_key=get("S3_SECRET_KEY") or get("AWS_SECRET_ACCESS_KEY") or "",
                bucket=bucket,
                secure=(get("S3_SECURE") or "false").lower() in _TRUE,
            )
        knowledge = get("PRESSROOM_KNOWLEDGE_DIR")
        return cls(
            paths=StackPaths(Path(get(HOME_ENV) or DEFAULT_HOME).resolve()),
            nats_url=get("NATS_URL"),
            database_url=get("DATABASE_URL"),
            s3=s3,
            s3_bucket=bucket,
            openai_base_url=get("OPENAI_BASE_URL"),
            openai_api_key=get("OPENAI_API_KEY"),
            tavily_api_key=get("TAVILY_API_KEY"),
            knowledge_dir=Path(knowledge).resolve() if knowledge else None,
            gateway_host=get("PRESSROOM_GATEWAY_HOST") or "127.0.0.1",
            gateway_port=int(get("PRESSROOM_GATEWAY_PORT") or DEFAULT_GATEWAY_PORT),
            nats_cluster=int(get("PRESSROOM_NATS_CLUSTER") or 1),
            environ=env,
        )


def sample_knowledge_dir() -> Path | None:
    """deploy/knowledge-sample in the repository (found from the working directory or this source tree)."""
    candidates = [Path.cwd(), *Path(__file__).resolve().parents]
    for base in candidates:
        folder = base / "deploy" / "knowledge-sample"
        if folder.is_dir():
            return folder
    return None


def ensure_knowledge_dir(config: StackConfig) -> Path:
    """The folder research searches. The default one is created once from the sample, then it is the user's."""
    if config.knowledge_dir is not None:
        return config.knowledge_dir
    target = config.paths.knowledge
    if not target.exists():
        sample = sample_knowledge_dir()
        if sample is not None:
            shutil.copytree(sample, target)
        else:
            target.mkdir(parents=True)
    return target
