"""`usage.replaced_cost_usd`: the cost of the report a row's latest report replaced (0 for the first).

A usage report is stored in one statement without locking its job first: the upsert locks the call's
row and reads its latest version, and returns what the report added (`cost_usd - replaced_cost_usd`),
which the same statement adds to `jobs.cost_usd` atomically. PostgreSQL 16 cannot return a row's old
values from an upsert, so the row keeps the one it needs. A constant default: no table rewrite.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "usage", sa.Column("replaced_cost_usd", sa.Numeric(14, 6), nullable=False, server_default="0")
    )


def downgrade() -> None:
    op.drop_column("usage", "replaced_cost_usd")
