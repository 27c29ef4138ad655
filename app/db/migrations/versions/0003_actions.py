"""one-click actions and tentative holds: action_results, holds

Revision ID: 0003_actions
Revises: 0002_drop_cursor_full
Create Date: 2026-12-06

``action_results`` remembers what a one-click action or an ``Idempotency-Key`` did (and
holds the per-meeting send lock); ``holds`` the tentative holds on reps' calendars. Two
new tables: today's rows are untouched.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_actions"
down_revision = "0003_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "action_results",
        sa.Column("key", sa.String(400), primary_key=True),
        sa.Column("meeting_id", sa.String(36), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("fingerprint", sa.String(128), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_action_results_meeting_id", "action_results", ["meeting_id"])
    op.create_table(
        "holds",
        sa.Column("meeting_id", sa.String(36), primary_key=True),
        sa.Column(
            "rep_id", sa.String(36), sa.ForeignKey("reps.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("nudge_id", sa.String(36), nullable=False),
        sa.Column("event_id", sa.String(1024), nullable=True),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("remove_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_holds_rep_id", "holds", ["rep_id"])
    op.create_index("ix_holds_due_at", "holds", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_holds_due_at", table_name="holds")
    op.drop_index("ix_holds_rep_id", table_name="holds")
    op.drop_table("holds")
    op.drop_index("ix_action_results_meeting_id", table_name="action_results")
    op.drop_table("action_results")
