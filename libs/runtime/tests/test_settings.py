"""Settings read from the environment: what compose and Kubernetes hand a service."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

from pressroom_runtime.settings import LLMSettings, S3Settings, ServiceSettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "PRESSROOM_HEALTH_PORT", "S3_REGION"):
        monkeypatch.delenv(name, raising=False)


def test_a_server_of_ones_own_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://ollama:11434/v1")
    settings = LLMSettings()
    assert settings.base_url == "http://ollama:11434/v1"
    assert settings.api_key.get_secret_value() == "unset"  # a placeholder such servers ignore


def test_openai_itself_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match=r"OPENAI_API_KEY.*OPENAI_BASE_URL"):
        LLMSettings()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert LLMSettings().api_key == SecretStr("sk-test")


def test_empty_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compose passes optional settings as ${VAR:-}: an empty value must not become a setting."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "")
    monkeypatch.setenv("PRESSROOM_HEALTH_PORT", "")
    monkeypatch.setenv("S3_REGION", "")
    assert LLMSettings().base_url is None
    assert ServiceSettings().health_port is None
    assert S3Settings().region is None
    monkeypatch.setenv("OPENAI_API_KEY", "")
    with pytest.raises(ValidationError, match="no text model"):
        LLMSettings()


def test_service_settings_with_their_own_prefix_keep_it(monkeypatch: pytest.MonkeyPatch) -> None:
    class Own(ServiceSettings):
        model_config = SettingsConfigDict(env_prefix="PRESSROOM_OWN_")
        secret: SecretStr | None = None

    monkeypatch.setenv("PRESSROOM_OWN_SECRET", "")
    assert Own().secret is None
    monkeypatch.setenv("PRESSROOM_OWN_SECRET", "s3cret")
    assert Own().secret == SecretStr("s3cret")
