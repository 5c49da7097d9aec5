from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from pressroom_runtime.settings import ServiceSettings


class WriterSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PRESSROOM_WRITER_", extra="ignore", populate_by_name=True)

    max_tokens: int = Field(2048, description="Hard cap on the post's length in tokens.")
