"""Migration 0003_encrypt_secrets encrypts the stored channel tokens in place — on SQLite and
PostgreSQL — and refuses, naming NEXTSTEP_SECRET_KEY, when it has rows and no key."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.db import migrate
from app.db.engine import make_engine
from app.db.models import WatchChannelRow
from app.errors import ConfigError
from app.secrets import KeyRing, bind_key_ring, generate_key

T = datetime(2026, 11, 23, 8, 0, tzinfo=UTC).isoformat()
BEFORE = "0002_drop_cursor_full"
TOKENS = {"c-google": "google-channel-token-0123456789", "s-graph": "graph-client-state-abcdef"}


def _seed(engine) -> None:  # type: ignore[no-untyped-def]
    command.upgrade(migrate.alembic_config(engine), BEFORE)  # the schema as deployed today
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO reps (id, email, provider, timezone, locale, working_hours,"
                " status, created_at) VALUES ('r1', 'anne@seller.io', 'google',"
                " 'Europe/Paris', 'en', '{}', 'active', :t)"
            ),
            {"t": T},
        )
        for channel_id, token in TOKENS.items():
            conn.execute(
                text(
                    "INSERT INTO watch_channels (channel_id, rep_id, provider, token,"
                    " resource_id, expires_at, renew_at, created_at)"
                    " VALUES (:c, 'r1', 'google', :tok, 'res', :t, :t, :t)"
                ),
                {"c": channel_id, "tok": token, "t": T},
            )


def test_0003_encrypts_stored_channel_tokens_in_place(database_url: str) -> None:
    engine = make_engine(database_url)
    keys = KeyRing.from_text(generate_key())
    try:
        _seed(engine)
        assert migrate.upgrade(engine, keys) == migrate.head_revision(engine)
        migrate.check_schema(engine)
        with engine.connect() as conn:
            raw = dict(conn.execute(text("SELECT channel_id, token FROM watch_channels")).all())
        assert set(raw) == set(TOKENS)
        for channel_id, stored in raw.items():
            assert stored.startswith(f"v1.{keys.key_ids[0]}.")
            assert TOKENS[channel_id] not in stored
        bind_key_ring(engine, keys)
        with Session(engine) as session:
            query = select(WatchChannelRow.channel_id, WatchChannelRow.token)
            read = {row.channel_id: row.token for row in session.execute(query)}
        assert read == TOKENS
        # Downgrading gives the tokens back in clear.
        command.downgrade(migrate.alembic_config(engine, keys), BEFORE)
        with engine.connect() as conn:
            raw = dict(conn.execute(text("SELECT channel_id, token FROM watch_channels")).all())
        assert raw == TOKENS
    finally:
        engine.dispose()


def test_0003_without_a_key_refuses_naming_the_variable(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        _seed(engine)
        with pytest.raises(ConfigError, match="NEXTSTEP_SECRET_KEY"):
            migrate.upgrade(engine)
        assert migrate.current_revision(engine) == BEFORE  # nothing half-done
        with engine.connect() as conn:
            raw = dict(conn.execute(text("SELECT channel_id, token FROM watch_channels")).all())
        assert raw == TOKENS
    finally:
        engine.dispose()
