"""accounts.language: the language the account's people read (the candid at-risk note)

Revision ID: 0003_health
Revises: 0002_drop_cursor_full
Create Date: 2026-12-06

Upgrades a database of today in place: one nullable column, the accounts keep their rows
(no language = US English, as before). Batch mode for SQLite.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_health"
down_revision = "0003_business_time"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("language")
