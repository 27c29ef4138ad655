"""crm_events: the CRM's event log (meeting.state_changed, rep.status_changed, …)

Revision ID: 0003_events
Revises: 0002_drop_cursor_full
Create Date: 2026-12-06

A new table and one nullable column (``reps.connection_lost_at``, once per outage):
every existing row stays as it is. Event bodies live in ``nudges``
(the outbox sends them like nudges); this table gives them an order for
``GET /v1/events?after=``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_events"
down_revision = "0003_health"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crm_events",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["nudges.id"],
            name=op.f("fk_crm_events_event_id_nudges"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_crm_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_crm_events_event_id")),
    )
    op.create_index(op.f("ix_crm_events_type"), "crm_events", ["type"], unique=False)
    with op.batch_alter_table("reps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("connection_lost_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("reps", schema=None) as batch_op:
        batch_op.drop_column("connection_lost_at")
    op.drop_index(op.f("ix_crm_events_type"), table_name="crm_events")
    op.drop_table("crm_events")
