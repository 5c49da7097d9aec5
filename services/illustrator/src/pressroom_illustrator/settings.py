from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from pressroom_runtime.settings import ServiceSettings

ProviderChoice = Literal["auto", "openai", "cover"]


class IllustratorSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="PRESSROOM_ILLUSTRATOR_", extra="ignore", populate_by_name=True
    )

    prompt_max_tokens: int = Field(120, description="Cap on the image prompt the model writes, in tokens.")
    image_provider: ProviderChoice = Field(
        "auto",
        description="openai, cover, or auto: openai when OPENAI_API_KEY is set and the images API is "
        "OpenAI's (OPENAI_BASE_URL unset) or named by PRESSROOM_ILLUSTRATOR_IMAGES_BASE_URL; else cover.",
    )
    image_model: str = Field("dall-e-3", description="dall-e-3 or gpt-image-1.")
    image_size: str = Field(
        "1792x1024", description="Asked of the model; an unsupported one becomes the closest it offers."
    )
    images_base_url: str | None = Field(
        None, description="The images API when it is not OpenAI's (and not the text model's server)."
    )
    image_timeout: float = Field(180.0, description="Seconds one image generation may take.")
    orphan_after_seconds: float = Field(
        3600.0,
        description="An object under jobs/ this many seconds old that no image.completed names is deleted.",
    )
    orphan_sweep_interval_seconds: float = Field(
        600.0, description="How often the orphan sweep runs, in seconds; 0 switches it off."
    )

    # Shared names, read as they are (not prefixed): they decide what `auto` means.
    openai_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("OPENAI_API_KEY"),
        description="The key for the images API (the text model's key, see its section).",
    )
    openai_base_url: str | None = Field(
        None,
        validation_alias=AliasChoices("OPENAI_BASE_URL"),
        description="The text model's server: when set, `auto` asks for images only with "
        "PRESSROOM_ILLUSTRATOR_IMAGES_BASE_URL.",
    )

    def resolved_image_provider(self) -> Literal["openai", "cover"]:
        if self.image_provider != "auto":
            return self.image_provider
        if not self.has_api_key:
            return "cover"
        # A key with OPENAI_BASE_URL alone names a text server (vLLM, Ollama, llama.cpp): no images there.
        return "openai" if not self.openai_base_url or self.images_base_url else "cover"

    @property
    def has_api_key(self) -> bool:
        key = self.openai_api_key.get_secret_value() if self.openai_api_key else ""
        return key.strip() not in ("", "unset")
