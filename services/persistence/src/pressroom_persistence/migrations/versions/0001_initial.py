"""The system of record: jobs, their artifacts, provider usage and the event log.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("requested", "running", "completed", "failed", "cancelled")


def _now() -> sa.TextClause:
    return sa.text("now()")


def _job_fk() -> sa.Column:
    return sa.Column("job_id", sa.Text, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False)


def _created_at() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now())


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("request", JSONB, nullable=False),
        sa.Column("owner", sa.Text, nullable=True),
        # When the job was requested (the event's occurred_at), so listings follow the user's order.
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_stage", sa.Text, nullable=True),
        sa.Column("failure_code", sa.Text, nullable=True),
        sa.Column("failure_message", sa.Text, nullable=True),
        sa.Column("cost_usd", sa.Numeric(14, 6), nullable=False, server_default="0"),
        sa.CheckConstraint(f"status IN {STATUSES!r}", name="jobs_status_check"),
    )
    # Keyset listing: newest first, optionally for one owner or one status.
    op.create_index("jobs_created_idx", "jobs", [sa.text("created_at DESC"), sa.text("id DESC")])
    op.create_index(
        "jobs_owner_created_idx", "jobs", ["owner", sa.text("created_at DESC"), sa.text("id DESC")]
    )
    op.create_index(
        "jobs_status_created_idx", "jobs", ["status", sa.text("created_at DESC"), sa.text("id DESC")]
    )

    op.create_table(
        "research",
        _job_fk(),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("skipped", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("sources", JSONB, nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("job_id", "version"),
    )
    op.create_table(
        "blog_posts",
        _job_fk(),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("markdown", sa.Text, nullable=False),
        sa.Column("word_count", sa.Integer, nullable=False),
        sa.Column("citations", JSONB, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("job_id", "version"),
    )
    op.create_table(
        "social_posts",
        _job_fk(),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("characters", sa.Integer, nullable=False),
        sa.Column("char_limit", sa.Integer, nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("job_id", "platform", "version"),
    )
    op.create_table(
        "images",
        _job_fk(),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("object_key", sa.Text, nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("content_type", sa.Text, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("job_id", "version"),
    )
    op.create_table(
        "usage",
        _job_fk(),
        sa.Column("stage", sa.Text, nullable=False),
        sa.Column("call", sa.Text, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("images", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Numeric(14, 6), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("job_id", "stage", "call"),
    )
    # The audit log of every event recorded. No foreign key: the terminal events and events that
    # arrive before their job are logged too.
    op.create_table(
        "events",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("job_id", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("causation_id", sa.Text, nullable=True),
        sa.Column("producer", sa.Text, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    op.create_index("events_job_type_idx", "events", ["job_id", "type"])


def downgrade() -> None:
    for table in ("events", "usage", "images", "social_posts", "blog_posts", "research", "jobs"):
        op.drop_table(table)
