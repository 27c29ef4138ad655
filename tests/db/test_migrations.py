"""Migrations upgrade a database of today in place, its rows kept — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import inspect, text

from app.db import migrate
from app.db.engine import make_engine

T = datetime(2026, 11, 23, 8, 0, tzinfo=UTC).isoformat()


def test_0002_drops_cursor_full_and_keeps_the_calendars(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        command.upgrade(migrate.alembic_config(engine), "0001")  # the schema as deployed today
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO reps (id, email, provider, timezone, locale, working_hours,"
                    " status, created_at) VALUES ('r1', 'anne@seller.io', 'google',"
                    " 'Europe/Paris', 'en', '{}', 'active', :t)"
                ),
                {"t": T},
            )
            conn.execute(
                text(
                    "INSERT INTO calendars (rep_id, provider, cursor, cursor_full, generation,"
                    " synced_at, sync_seq, attempts, lease_owner, lease_until)"
                    " VALUES ('r1', 'google', 'tok-42', :full, 3, :t, 7, 0, 'host:1', :t)"
                ),
                {"t": T, "full": True},
            )
        assert migrate.upgrade(engine) == migrate.head_revision(engine)
        migrate.check_schema(engine)  # serve would start on it
        columns = {c["name"] for c in inspect(engine).get_columns("calendars")}
        assert "cursor_full" not in columns
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT rep_id, cursor, generation, sync_seq, lease_owner FROM calendars")
            ).one()
            assert tuple(row) == ("r1", "tok-42", 3, 7, "host:1")
            # The rep is untouched, and the calendar still goes with it.
            conn.execute(text("DELETE FROM reps WHERE id = 'r1'"))
            assert conn.execute(text("SELECT count(*) FROM calendars")).scalar() == 0
    finally:
        engine.dispose()


def test_0003_adds_the_account_language_and_keeps_the_accounts(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        command.upgrade(migrate.alembic_config(engine), "0002_drop_cursor_full")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO accounts (domain, name, timezone, stage, owner_email, contacts,"
                    " updated_at) VALUES ('acme.com', 'Acme', 'Europe/Paris', 'customer',"
                    " 'anne@seller.io', :contacts, :t)"
                ),
                {"t": T, "contacts": '[{"email": "dana@acme.com", "role": "decision_maker"}]'},
            )
        assert migrate.upgrade(engine) == migrate.head_revision(engine)
        migrate.check_schema(engine)
        assert "language" in {c["name"] for c in inspect(engine).get_columns("accounts")}
        with engine.begin() as conn:
            row = conn.execute(
                text("SELECT domain, name, stage, owner_email, language FROM accounts")
            ).one()
            assert tuple(row) == ("acme.com", "Acme", "customer", "anne@seller.io", None)
            conn.execute(text("UPDATE accounts SET language = 'fr'"))
            assert conn.execute(text("SELECT language FROM accounts")).scalar() == "fr"
    finally:
        engine.dispose()


def test_0003_adds_the_event_log_and_keeps_the_reps(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        command.upgrade(migrate.alembic_config(engine), "0002_drop_cursor_full")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO reps (id, email, provider, timezone, locale, working_hours,"
                    " status, created_at) VALUES ('r1', 'anne@seller.io', 'google',"
                    " 'Europe/Paris', 'en', '{}', 'active', :t)"
                ),
                {"t": T},
            )
        assert migrate.upgrade(engine) == migrate.head_revision(engine)
        migrate.check_schema(engine)
        assert "connection_lost_at" in {c["name"] for c in inspect(engine).get_columns("reps")}
        assert {c["name"] for c in inspect(engine).get_columns("crm_events")} == {
            "seq",
            "event_id",
            "type",
            "occurred_at",
        }
        with engine.connect() as conn:
            assert conn.execute(text("SELECT email, connection_lost_at FROM reps")).one() == (
                "anne@seller.io",
                None,
            )
        command.downgrade(migrate.alembic_config(engine), "0002_drop_cursor_full")
        assert "crm_events" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_0003_adds_the_action_and_hold_tables_and_keeps_the_reps(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        command.upgrade(migrate.alembic_config(engine), "0002_drop_cursor_full")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO reps (id, email, provider, timezone, locale, working_hours,"
                    " status, created_at) VALUES ('r1', 'anne@seller.io', 'google',"
                    " 'Europe/Paris', 'en', '{}', 'active', :t)"
                ),
                {"t": T},
            )
        assert migrate.upgrade(engine) == migrate.head_revision(engine)
        migrate.check_schema(engine)
        tables = set(inspect(engine).get_table_names())
        assert {"action_results", "holds"} <= tables
        with engine.begin() as conn:
            conn.execute(
                text(
                    'INSERT INTO holds (meeting_id, rep_id, nudge_id, start, "end", remove_at,'
                    " status, updated_at) VALUES ('m1', 'r1', 'n1', :t, :t, :t, 'wanted', :t)"
                ),
                {"t": T},
            )
            assert conn.execute(text("SELECT email FROM reps")).scalar() == "anne@seller.io"
            conn.execute(text("DELETE FROM reps WHERE id = 'r1'"))
            assert conn.execute(text("SELECT count(*) FROM holds")).scalar() == 0
        command.downgrade(migrate.alembic_config(engine), "0002_drop_cursor_full")
        assert not {"action_results", "holds"} & set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_0003_adds_per_user_connections_and_keeps_the_reps(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        command.upgrade(migrate.alembic_config(engine), "0002_drop_cursor_full")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO reps (id, email, provider, timezone, locale, working_hours,"
                    " status, created_at) VALUES ('r1', 'anne@seller.io', 'google',"
                    " 'Europe/Paris', 'en', '{}', 'active', :t)"
                ),
                {"t": T},
            )
        assert migrate.upgrade(engine) == migrate.head_revision(engine)
        migrate.check_schema(engine)
        assert {"auth", "oauth_grant"} <= {c["name"] for c in inspect(engine).get_columns("reps")}
        with engine.connect() as conn:
            row = conn.execute(text("SELECT email, auth, oauth_grant FROM reps")).one()
            assert tuple(row) == ("anne@seller.io", "admin", None)  # as before: delegation
            assert conn.execute(text("SELECT count(*) FROM oauth_states")).scalar() == 0
        command.downgrade(migrate.alembic_config(engine), "0002_drop_cursor_full")
        assert "auth" not in {c["name"] for c in inspect(engine).get_columns("reps")}
    finally:
        engine.dispose()
