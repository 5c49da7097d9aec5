"""`blog_posts.checks`, `social_posts.checks`: what the checks before publishing found in a generated
version (the event's `checks`: HTML and links removed, unsupported citations, the detected language),
so the REST API shows it beside the text. NULL for an edited version and for rows stored before it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("blog_posts", "social_posts")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("checks", JSONB, nullable=True))


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "checks")
