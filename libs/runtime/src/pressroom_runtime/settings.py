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

    nats_url: str = Field("nats://127.0.0.1:4222", validation_alias=_env("NATS_URL"))
    replica: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}",
        validation_alias=_env("PRESSROOM_REPLICA"),
    )
    log_level: str = Field("INFO", validation_alias=_env("PRESSROOM_LOG_LEVEL"))
    log_format: str = Field("console", validation_alias=_env("PRESSROOM_LOG_FORMAT"))
    health_host: str = Field("127.0.0.1", validation_alias=_env("PRESSROOM_HEALTH_HOST"))
    health_port: int | None = Field(None, validation_alias=_env("PRESSROOM_HEALTH_PORT"))
    publish_timeout: float = Field(5.0, validation_alias=_env("PRESSROOM_PUBLISH_TIMEOUT"))


class LLMSettings(BaseSettings):
    """An OpenAI-compatible text model: OpenAI itself, vLLM, Ollama, llama.cpp.

    OpenAI itself needs OPENAI_API_KEY; a server of one's own (OPENAI_BASE_URL) needs a key only if it
    checks one, so without a key a placeholder is sent.
    """

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, env_ignore_empty=True)

    base_url: str | None = Field(None, validation_alias=_env("OPENAI_BASE_URL"))
    api_key: SecretStr = Field(SecretStr("unset"), validation_alias=_env("OPENAI_API_KEY"))
    model: str = Field("gpt-4o-mini", validation_alias=_env("PRESSROOM_LLM_MODEL"))
    profile: LLMProfile = Field(LLMProfile.chat, validation_alias=_env("PRESSROOM_LLM_PROFILE"))
    timeout: float = Field(120.0, validation_alias=_env("PRESSROOM_LLM_TIMEOUT"))
    temperature: float = Field(0.7, validation_alias=_env("PRESSROOM_LLM_TEMPERATURE"))
    # Small base models loop without it; ignored by servers that do not know it.
    repeat_penalty: float = Field(1.2, validation_alias=_env("PRESSROOM_LLM_REPEAT_PENALTY"))

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

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, env_ignore_empty=True)

    endpoint: str = Field("127.0.0.1:8333", validation_alias=_env("S3_ENDPOINT"))
    access_key: SecretStr = Field(SecretStr(""), validation_alias=_env("S3_ACCESS_KEY", "AWS_ACCESS_KEY_ID"))
    secret_key: SecretStr = Field(
        SecretStr(""), validation_alias=_env("S3_SECRET_KEY", "AWS_SECRET_ACCESS_KEY")
    )
    bucket: str = Field("pressroom-images", validation_alias=_env("S3_BUCKET"))
    secure: bool = Field(False, validation_alias=_env("S3_SECURE"))
    region: str | None = Field(None, validation_alias=_env("S3_REGION"))
