from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from pressroom_runtime.settings import ServiceSettings


class IllustratorSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="PRESSROOM_ILLUSTRATOR_", extra="ignore", populate_by_name=True
    )

    prompt_max_tokens: int = Field(120, description="Cap on the image prompt the model writes.")
