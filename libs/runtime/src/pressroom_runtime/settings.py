"""Typed settings. Shared connection settings use their well-known names (NATS_URL, OPENAI_API_KEY, …);
each service's own settings use one prefix, PRESSROOM_<SERVICE>_.

An empty variable counts as unset (env_ignore_empty): compose passes optional settings as `${VAR:-}`.
"""

from __future__ import annotations

import os
import socket
from enum import StrEnum

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class LLMProfile(StrEnum):
    chat = "chat"  # instruction-tuned chat models: OpenAI, vLLM, Ollama
    completion = "completion"  # base models through /v1/completions with a document-style prompt


class ServiceSettings(BaseSettings):
    """What every service needs: the bus, logging, identity, health."""

    model_config = SettingsConfigDict(
        env_prefix="PRESSROOM_", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    nats_url: str = Field(
        "nats://127.0.0.1:4222",
        validation_alias=_env("NATS_URL"),
        description="The NATS server; a comma-separated list for a cluster (nats://a:4222,nats://b:4222): "
        "the client picks one and fails over.",
    )
    nats_user: str | None = Field(
        None,
        validation_alias=_env("NATS_USER"),
        description="This service's own NATS user (pressroom_contracts.access); unset for a server "
        "without auth.",
    )
    nats_password: SecretStr | None = Field(
        None, validation_alias=_env("NATS_PASSWORD"), description="The password of NATS_USER."
    )
    stream_replicas: int = Field(
        1,
        ge=1,
        le=5,
        validation_alias=_env("PRESSROOM_STREAM_REPLICAS"),
        description="Copies of the CONTENT stream and the key-value buckets that provisioning asks for "
        "(3 on a cluster).",
    )
    replica: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}",
        validation_alias=_env("PRESSROOM_REPLICA"),
        description="This process's name among the replicas of its service, in logs, events and its NATS "
        "connection name (default: the host name and the process id, hostname-pid).",
    )
    log_level: str = Field(
        "INFO", validation_alias=_env("PRESSROOM_LOG_LEVEL"), description="DEBUG, INFO, WARNING or ERROR."
    )
    log_format: str = Field(
        "console",
        validation_alias=_env("PRESSROOM_LOG_FORMAT"),
        description="console (readable lines) or json (one JSON object per line).",
    )
    health_host: str = Field(
        "127.0.0.1",
        validation_alias=_env("PRESSROOM_HEALTH_HOST"),
        description="Address the health and metrics endpoint listens on.",
    )
    health_port: int | None = Field(
        None,
        validation_alias=_env("PRESSROOM_HEALTH_PORT"),
        description="Port of the health and metrics endpoint (/healthz, /readyz, /metrics); unset: any free "
        "port. The gateway serves them on its own port instead.",
    )
    publish_timeout: float = Field(
        5.0,
        validation_alias=_env("PRESSROOM_PUBLISH_TIMEOUT"),
        description="Seconds a publish waits for JetStream's acknowledgement.",
    )

    # Delivery (consumer.py). Stages mostly wait on providers, so a slot costs a coroutine and a
    # connection; the embedded stack sets the writer's to the local model server's parallel slots.
    # No alias: the subclass's env_prefix names it, PRESSROOM_<SERVICE>_CONCURRENCY.
    concurrency: int = Field(64, ge=1, description="Messages one replica works on at once.")
    retry_base_seconds: float = Field(
        1.0,
        gt=0,
        validation_alias=_env("PRESSROOM_RETRY_BASE_SECONDS"),
        description="First pause, in seconds, between tries while a dependency is down (and of NAK "
        "delays); it doubles up to PRESSROOM_RETRY_MAX_SECONDS.",
    )
    retry_max_seconds: float = Field(
        30.0,
        gt=0,
        validation_alias=_env("PRESSROOM_RETRY_MAX_SECONDS"),
        description="Longest pause, in seconds, between those tries.",
    )
    drain_seconds: float = Field(
        20.0,
        ge=0,
        validation_alias=_env("PRESSROOM_DRAIN_SECONDS"),
        description="On SIGTERM: seconds in-flight messages may take to finish before they are handed back.",
    )
    lag_interval_seconds: float = Field(
        10.0,
        gt=0,
        validation_alias=_env("PRESSROOM_LAG_INTERVAL_SECONDS"),
        description="How often, in seconds, the consumer's pending and unacknowledged counts are read for "
        "the lag gauges.",
    )
    usage_report_seconds: float = Field(
        5.0,
        gt=0,
        validation_alias=_env("PRESSROOM_USAGE_REPORT_SECONDS"),
        description="A running provider call reports the tokens it used so far at this interval, in "
        "seconds (usage.recorded).",
    )


class StreamBounds(BaseSettings):
    """Size bounds provisioning applies to the streams and buckets (their replica count is
    ServiceSettings.stream_replicas). -1: no bound but the stream's age limit."""

    model_config = SettingsConfigDict(
        env_prefix="PRESSROOM_STREAM_", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    content_max_bytes: int = Field(-1, description="Bound of the CONTENT stream in bytes.")
    deadletter_max_bytes: int = Field(-1, description="Bound of the DEADLETTER stream in bytes.")
    kv_max_bytes: int = Field(-1, description="Bound of each key-value bucket in bytes.")


class LLMSettings(BaseSettings):
    """An OpenAI-compatible text model: OpenAI itself, vLLM, Ollama, llama.cpp.

    OpenAI itself needs OPENAI_API_KEY; a server of one's own (OPENAI_BASE_URL) needs a key only if it
    checks one, so without a key a placeholder is sent.
    """

    # The prefix also namespaces the field names pydantic-settings reads besides the aliases: without one a
    # stray MODEL or TIMEOUT in a service's environment would set the text model's.
    model_config = SettingsConfigDict(
        env_prefix="PRESSROOM_LLM_", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    base_url: str | None = Field(
        None,
        validation_alias=_env("OPENAI_BASE_URL"),
        description="An OpenAI-compatible server (vLLM, Ollama, llama.cpp: http://host:port/v1); unset: "
        "OpenAI itself.",
    )
    api_key: SecretStr = Field(
        SecretStr("unset"),
        validation_alias=_env("OPENAI_API_KEY"),
        description="The key for OpenAI (required there); a server of one's own needs one only if it "
        "checks it.",
    )
    model: str = Field(
        "gpt-4o-mini", validation_alias=_env("PRESSROOM_LLM_MODEL"), description="The text model's name."
    )
    profile: LLMProfile = Field(
        LLMProfile.chat,
        validation_alias=_env("PRESSROOM_LLM_PROFILE"),
        description="chat (instruction-tuned chat models) or completion (base models through "
        "/v1/completions with a document-style prompt).",
    )
    timeout: float = Field(
        120.0,
        validation_alias=_env("PRESSROOM_LLM_TIMEOUT"),
        description="Seconds one model request may take.",
    )
    temperature: float = Field(
        0.7, validation_alias=_env("PRESSROOM_LLM_TEMPERATURE"), description="Sampling temperature."
    )
    # Small base models loop without it.
    repeat_penalty: float = Field(
        1.2,
        validation_alias=_env("PRESSROOM_LLM_REPEAT_PENALTY"),
        description="Penalty on repeated tokens (1: none); ignored by servers that do not know it.",
    )

    @model_validator(mode="after")
    def _a_server_to_talk_to(self) -> LLMSettings:
        if self.base_url is None and self.api_key.get_secret_value() in ("", "unset"):
            raise ValueError(
                "no text model: set OPENAI_API_KEY for OpenAI, or OPENAI_BASE_URL for an "
                "OpenAI-compatible server (vLLM, Ollama, llama.cpp), which needs no key"
            )
        return self


class S3Settings(BaseSettings):
    """Any S3: MinIO, SeaweedFS, AWS."""

    # As for LLMSettings: the field names are read as S3_<NAME>, never bare (BUCKET, REGION, …).
    model_config = SettingsConfigDict(
        env_prefix="S3_", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    endpoint: str = Field(
        "127.0.0.1:8333", validation_alias=_env("S3_ENDPOINT"), description="host:port of the S3 server."
    )
    access_key: SecretStr = Field(
        SecretStr(""),
        validation_alias=_env("S3_ACCESS_KEY", "AWS_ACCESS_KEY_ID"),
        description="S3 access key.",
    )
    secret_key: SecretStr = Field(
        SecretStr(""),
        validation_alias=_env("S3_SECRET_KEY", "AWS_SECRET_ACCESS_KEY"),
        description="S3 secret key.",
    )
    bucket: str = Field(
        "pressroom-images", validation_alias=_env("S3_BUCKET"), description="The bucket images are kept in."
    )
    secure: bool = Field(False, validation_alias=_env("S3_SECURE"), description="Talk to S3 over HTTPS.")
    region: str | None = Field(
        None,
        validation_alias=_env("S3_REGION"),
        description="The S3 region; unset: the server's own (the gateway signs image URLs for us-east-1).",
    )
