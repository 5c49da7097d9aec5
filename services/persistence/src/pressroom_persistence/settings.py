"""Settings of the persistence service: the shared ones plus its database and pool."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from pressroom_runtime.settings import ServiceSettings


class PersistenceSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="PRESSROOM_PERSISTENCE_", extra="ignore", populate_by_name=True
    )

    # The well-known name first, so the same DATABASE_URL serves alembic, psql and this service.
    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:5432/pressroom",
        validation_alias=AliasChoices("DATABASE_URL", "PRESSROOM_PERSISTENCE_DATABASE_URL"),
    )
    pool_min_size: int = 1
    pool_max_size: int = 10
    # Off when an operator runs `alembic upgrade head` as a separate deploy step.
    migrate_on_start: bool = True
    # Events are handled PRESSROOM_PERSISTENCE_CONCURRENCY at once per replica, one job's in stream order.
    # Queries are answered concurrently too.
    query_workers: int = 8
    # The budget of a job whose request sets none, fixed when the job is recorded; None: unlimited.
    default_budget_usd: float | None = Field(None, gt=0)
    # A job with no recorded progress for this long fails as `stalled` (the stage it waits for).
    stale_after_seconds: float = Field(900.0, gt=0)
    # How often the sweep looks for such jobs (only while this service has no backlog of events).
    sweep_interval_seconds: float = Field(60.0, gt=0)
