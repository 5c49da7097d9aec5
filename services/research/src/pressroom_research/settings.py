from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from pressroom_runtime.settings import ServiceSettings


class ResearchSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PRESSROOM_RESEARCH_", extra="ignore", populate_by_name=True)

    tavily_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("TAVILY_API_KEY"),
        description="Search the web through Tavily; unset: search the local knowledge base.",
    )
    tavily_base_url: str | None = Field(
        None, description="Tavily API base URL: a proxy or a stand-in (default: https://api.tavily.com)."
    )
    tavily_timeout: float = Field(30.0, gt=0, le=120, description="Seconds per Tavily request.")
    knowledge_dir: Path = Field(
        Path("deploy/knowledge-sample"),
        validation_alias=AliasChoices("PRESSROOM_KNOWLEDGE_DIR"),
        description="The folder of documents the knowledge base searches (relative to the working "
        "directory).",
    )
    max_sources: int = Field(5, ge=1, le=20, description="Sources one job's research keeps at most.")
    min_score: float = Field(0.5, description="Knowledge-base passages scoring below this are not relevant.")
