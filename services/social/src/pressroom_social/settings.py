from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from pressroom_runtime.settings import ServiceSettings


class SocialSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PRESSROOM_SOCIAL_", extra="ignore", populate_by_name=True)

    max_tokens: int = Field(400, description="Cap on one post's length in tokens, before the platform limit.")
    thread_max_tokens: int = Field(900, description="Cap on an X thread's length in tokens (all its posts).")
