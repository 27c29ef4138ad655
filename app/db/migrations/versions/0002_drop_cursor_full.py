"""drop calendars.cursor_full (written on every sync page, never read)

Revision ID: 0002_drop_cursor_full
Revises: 0001
Create Date: 2026-12-05

Upgrades a database of today in place: the calendars keep their rows, cursors and
leases. SQLite cannot drop a column in place everywhere, so the table is rebuilt in
batch mode (copy, drop, rename), inside the migration's transaction.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_drop_cursor_full"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.drop_column("cursor_full")


def downgrade() -> None:
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("cursor_full", sa.Boolean(), nullable=False, server_default=sa.false())
        )
