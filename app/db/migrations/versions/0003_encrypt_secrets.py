"""encrypt watch_channels.token (Google channel tokens, Graph clientState) at rest

Revision ID: 0003_encrypt_secrets
Revises: 0002_drop_cursor_full
Create Date: 2026-12-06

The column becomes TEXT (a token encrypted by the key ring is longer than the 255
characters it had) and every row is encrypted in place, inside the migration's
transaction, under the first key of NEXTSTEP_SECRET_KEY (or the SQLite key file):
``nextstep migrate`` and ``serve`` hand the key ring to Alembic. Downgrading decrypts.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from app.errors import ConfigError
from app.secrets import KeyRing

revision = "0003_encrypt_secrets"
down_revision = "0002_drop_cursor_full"
branch_labels = None
depends_on = None

CONTEXT = "watch_channels.token"  # EncryptedText("watch_channels.token") in app/db/models.py
channels = sa.table(
    "watch_channels", sa.column("channel_id", sa.String), sa.column("token", sa.Text)
)


def _ring(rows: int) -> KeyRing | None:
    keys = context.config.attributes.get("keys")
    if keys is None and rows:
        raise ConfigError(
            f"NEXTSTEP_SECRET_KEY: needed to encrypt the {rows} stored channel tokens "
            "(migration 0003_encrypt_secrets); set it and run `nextstep migrate` again"
        )
    return keys  # type: ignore[no-any-return]


def _rewrite(convert: str) -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(channels.c.channel_id, channels.c.token)).all()
    ring = _ring(len(rows))
    for channel_id, token in rows:
        if token is None or ring is None:
            continue
        if convert == "encrypt":
            value = ring.encrypt(token, context=CONTEXT)
        else:
            value = ring.decrypt(token, context=CONTEXT)
        bind.execute(
            channels.update().where(channels.c.channel_id == channel_id).values(token=value)
        )


def upgrade() -> None:
    with op.batch_alter_table("watch_channels", schema=None) as batch_op:
        batch_op.alter_column(
            "token", existing_type=sa.String(length=255), type_=sa.Text(), existing_nullable=False
        )
    _rewrite("encrypt")


def downgrade() -> None:
    _rewrite("decrypt")
    with op.batch_alter_table("watch_channels", schema=None) as batch_op:
        batch_op.alter_column(
            "token", existing_type=sa.Text(), type_=sa.String(length=255), existing_nullable=False
        )
