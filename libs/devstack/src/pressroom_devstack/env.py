"""The environment contract between the devstack and the services it starts (one place, used by
`pressroom up` and by the test fixtures)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .objectstore import S3Info

# Settings a service reads; stripped from an inherited environment where tests must not pick up a
# developer's real keys or a running stack's URLs.
CONTRACT_PREFIXES = ("PRESSROOM_", "S3_", "OPENAI_")
CONTRACT_NAMES = frozenset(
    {"NATS_URL", "DATABASE_URL", "TAVILY_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
)


@dataclass(frozen=True)
class LLMEndpoint:
    """An OpenAI-compatible text model. Fields left None are not set (the service's defaults apply)."""

    base_url: str | None
    api_key: str | None
    model: str | None = None
    profile: str | None = None  # "chat" or "completion"

    def env(self) -> dict[str, str]:
        values = {
            "OPENAI_BASE_URL": self.base_url,
            "OPENAI_API_KEY": self.api_key,
            "PRESSROOM_LLM_MODEL": self.model,
            "PRESSROOM_LLM_PROFILE": self.profile,
        }
        return {k: v for k, v in values.items() if v is not None}


def without_contract(environ: Mapping[str, str]) -> dict[str, str]:
    return {
        k: v for k, v in environ.items() if k not in CONTRACT_NAMES and not k.startswith(CONTRACT_PREFIXES)
    }


def service_env(
    base: Mapping[str, str],
    *,
    nats_url: str,
    database_url: str | None = None,
    s3: S3Info | None = None,
    llm: LLMEndpoint | None = None,
    tavily_api_key: str | None = None,
    knowledge_dir: Path | None = None,
    home: Path | None = None,
    gateway_host: str | None = None,
) -> dict[str, str]:
    """`base` plus every connection setting; the supervisor adds each replica's identity and ports."""
    env = dict(base)
    env["NATS_URL"] = nats_url
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    if s3 is not None:
        env.update(s3.env())
    if llm is not None:
        env.update(llm.env())
    if tavily_api_key:
        env["TAVILY_API_KEY"] = tavily_api_key
    if knowledge_dir is not None:
        env["PRESSROOM_KNOWLEDGE_DIR"] = str(knowledge_dir)
    if home is not None:
        env["PRESSROOM_HOME"] = str(home)
    if gateway_host is not None:
        env["PRESSROOM_GATEWAY_HOST"] = gateway_host
    return env
