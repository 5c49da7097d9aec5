"""Schema migrations (alembic), run from the service's start-up or from the alembic CLI.

Replicas starting together all try to migrate: the upgrade runs in one transaction that first takes a
transaction-scoped advisory lock, so one replica migrates and the others wait, then find the schema
at head and do nothing. PostgreSQL DDL is transactional, so a failed upgrade leaves nothing half-done.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant shared by every replica; spells "pressroo" in ASCII.
LOCK_KEY = int.from_bytes(b"pressroo", "big")
_one_at_a_time = threading.Lock()


def sqlalchemy_url(database_url: str) -> URL:
    """The asyncpg dialect URL of a libpq-style URL; query parameters such as ?host=/socket/dir carry over."""
    url = make_url(database_url)
    # libpq and asyncpg also accept postgres://, which SQLAlchemy no longer knows.
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {url.drivername}")
    return url.set(drivername="postgresql+asyncpg")


def alembic_config() -> Config:
    # No alembic.ini needed at run time: the script location is inside the installed package.
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def lock(connection: Connection) -> None:
    """Held until the migration transaction ends."""
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(database_url: str, revision: str = "head") -> None:
    await asyncio.to_thread(_upgrade_in_own_loop, database_url, revision)


def _upgrade_in_own_loop(database_url: str, revision: str) -> None:
    # alembic keeps the running migration's context in module globals: two upgrades interleaved on one
    # event loop would share it. One per process at a time, on a loop of its own in a worker thread.
    with _one_at_a_time:
        asyncio.run(_upgrade_async(database_url, revision))


async def _upgrade_async(database_url: str, revision: str) -> None:
    engine = create_async_engine(sqlalchemy_url(database_url), poolclass=NullPool)
    try:
        # begin(): alembic joins this transaction, so the lock and the DDL commit together.
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, revision)
    finally:
        await engine.dispose()


async def current(database_url: str) -> str | None:
    """The revision the database is at (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    engine = create_async_engine(sqlalchemy_url(database_url), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()
