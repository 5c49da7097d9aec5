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
        description="The PostgreSQL database (postgresql://user:pass@host:5432/db).",
    )
    pool_min_size: int = Field(1, description="Database connections kept open at least.")
    pool_max_size: int = Field(10, description="Database connections open at most.")
    migrate_on_start: bool = Field(
        True,
        description="Run the migrations (alembic upgrade head) at start; off when an operator runs them as "
        "a separate deploy step.",
    )
    # Events are handled PRESSROOM_PERSISTENCE_CONCURRENCY at once per replica, one job's in stream order.
    query_workers: int = Field(
        8, description="Queries of each kind (query.job, query.jobs) answered at once per replica."
    )
    default_budget_usd: float | None = Field(
        None,
        gt=0,
        description="The budget in USD of a job whose request sets none, fixed when the job is recorded; "
        "unset: unlimited.",
    )
    stale_after_seconds: float = Field(
        900.0,
        gt=0,
        description="A job with no recorded progress for this many seconds fails as `stalled` (naming the "
        "stage it waits for).",
    )
    sweep_interval_seconds: float = Field(
        60.0,
        gt=0,
        description="How often, in seconds, the sweep looks for such jobs (only while this service has no "
        "backlog of events).",
    )
