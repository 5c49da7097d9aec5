"""Versions with their origin, X threads, image variants, cancellation reasons and per-job budgets.

- blog_posts, social_posts, images: `origin` ('generated' | 'regenerated' | 'edited'); blog and social
  posts also the `editor` of an edited version. An edit has no model: blog_posts.model may be NULL.
- social_posts.parts: a thread's posts; images.variants: the other renditions (e.g. square).
- jobs.budget_usd: the budget fixed when the job was requested (its own, else the service default);
  NULL is unlimited. jobs.cancel_reason: why the job was cancelled. jobs.ended_by: the id of the event
  whose handling ended the job (completed, failed or cancelled it).

Every added column is nullable or has a constant default, so PostgreSQL adds it without rewriting the
table. Rows from before this revision are backfilled: a version above 1 could only be regenerated.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ORIGINS = ("generated", "regenerated", "edited")
VERSIONED = ("blog_posts", "social_posts", "images")
EDITABLE = ("blog_posts", "social_posts")


def _empty_list() -> sa.TextClause:
    return sa.text("'[]'::jsonb")


def upgrade() -> None:
    for table in VERSIONED:
        op.add_column(table, sa.Column("origin", sa.Text, nullable=False, server_default="generated"))
        op.create_check_constraint(f"{table}_origin_check", table, f"origin IN {ORIGINS!r}")
        op.execute(f"UPDATE {table} SET origin = 'regenerated' WHERE version > 1")
    for table in EDITABLE:
        op.add_column(table, sa.Column("editor", sa.Text, nullable=True))
    op.alter_column("blog_posts", "model", nullable=True)
    op.add_column("social_posts", sa.Column("parts", JSONB, nullable=False, server_default=_empty_list()))
    op.add_column("images", sa.Column("variants", JSONB, nullable=False, server_default=_empty_list()))

    op.add_column("jobs", sa.Column("budget_usd", sa.Numeric(14, 6), nullable=True))
    op.add_column("jobs", sa.Column("cancel_reason", sa.Text, nullable=True))
    op.add_column("jobs", sa.Column("ended_by", sa.Text, nullable=True))
    op.execute(
        """UPDATE jobs SET budget_usd = (request->>'budget_usd')::numeric
           WHERE jsonb_typeof(request->'budget_usd') = 'number'"""
    )


def downgrade() -> None:
    # 0001 knows no edits: their rows stay, without a model name.
    op.execute("UPDATE blog_posts SET model = '' WHERE model IS NULL")
    op.alter_column("blog_posts", "model", nullable=False)
    op.drop_column("jobs", "ended_by")
    op.drop_column("jobs", "cancel_reason")
    op.drop_column("jobs", "budget_usd")
    op.drop_column("images", "variants")
    op.drop_column("social_posts", "parts")
    for table in EDITABLE:
        op.drop_column(table, "editor")
    for table in VERSIONED:
        op.drop_constraint(f"{table}_origin_check", table, type_="check")
        op.drop_column(table, "origin")
