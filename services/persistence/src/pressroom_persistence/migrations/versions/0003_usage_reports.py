"""Usage reported while a call runs: `usage.report`, the number of the latest report stored for a call.

A provider call now reports its running usage as it goes (usage.recorded with a rising `report`); the
row of the call keeps the highest report. Rows from before this revision are complete calls: report 1.
A constant default, so PostgreSQL adds the column without rewriting the table.

Revision ID: 0003
Revises: 0002
Create Date: 2025-03-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("usage", sa.Column("report", sa.Integer, nullable=False, server_default="1"))


def downgrade() -> None:
    op.drop_column("usage", "report")
