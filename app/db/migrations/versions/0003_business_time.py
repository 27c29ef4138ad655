"""business time: reps.country; accounts.country, working_hours, calendar_timezone

Revision ID: 0003_business_time
Revises: 0002_drop_cursor_full
Create Date: 2026-12-06

Adds nullable columns only: existing reps and accounts keep working as before (their
country then comes from their time zone, their hours from the contract's defaults).
``accounts.calendar_timezone`` is the zone the account's own people use on the invites
they organise, learnt from the calendar; the CRM's ``timezone`` wins over it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_business_time"
down_revision = "0003_encrypt_secrets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("country", sa.String(length=2), nullable=True))
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("country", sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column("working_hours", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("calendar_timezone", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("calendar_timezone")
        batch_op.drop_column("working_hours")
        batch_op.drop_column("country")
    with op.batch_alter_table("reps", schema=None) as batch_op:
        batch_op.drop_column("country")
