"""Alembic environment. Two ways in:

- from the service (pressroom_persistence.migrate.upgrade): a connection is handed over in
  config.attributes, inside a transaction the caller commits;
- from the CLI (`alembic -c services/persistence/alembic.ini upgrade head`): an async engine is built
  from DATABASE_URL.

Either way the advisory lock is taken before alembic reads the current revision.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from pressroom_persistence.migrate import lock, sqlalchemy_url
from pressroom_persistence.settings import PersistenceSettings

config = context.config
target_metadata = None  # migrations are written by hand with op.*; there are no ORM models


def run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        lock(connection)
        context.run_migrations()


async def run_from_cli() -> None:
    engine = create_async_engine(sqlalchemy_url(PersistenceSettings().database_url), poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=sqlalchemy_url(PersistenceSettings().database_url),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()
elif (handed_over := config.attributes.get("connection")) is not None:
    run_migrations(handed_over)
else:
    asyncio.run(run_from_cli())
