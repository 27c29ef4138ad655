"""people sign in, reps connect their own calendars: reps.auth, reps.oauth_grant, oauth_states

Revision ID: 0003_signin
Revises: 0002_drop_cursor_full
Create Date: 2026-12-06

Upgrades a database of today in place: every existing rep keeps its rows and becomes
``auth = 'admin'`` (the deployment's delegation, as before). ``oauth_grant`` holds a rep's
own grant encrypted (``v1.…`` tokens of app/secrets.py); ``oauth_states`` the sign-ins and
connections under way (single use, expiring).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_signin"
down_revision = "0003_actions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reps", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("auth", sa.String(length=10), nullable=False, server_default="admin")
        )
        batch_op.add_column(sa.Column("oauth_grant", sa.Text(), nullable=True))
    op.create_table(
        "oauth_states",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=10), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("rep_id", sa.String(length=36), nullable=True),
        sa.Column("browser", sa.String(length=64), nullable=False),
        sa.Column("pending", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["rep_id"],
            ["reps.id"],
            name=op.f("fk_oauth_states_rep_id_reps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_oauth_states")),
    )
    with op.batch_alter_table("oauth_states", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oauth_states_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("oauth_states", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_states_expires_at"))
    op.drop_table("oauth_states")
    with op.batch_alter_table("reps", schema=None) as batch_op:
        batch_op.drop_column("oauth_grant")
        batch_op.drop_column("auth")
