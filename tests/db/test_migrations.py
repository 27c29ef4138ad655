"""Migrations upgrade a database of today in place, its rows kept — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from app.db import migrate
from app.db.engine import make_engine
from app.db.models import Base

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


def _rows_of_today(conn) -> None:  # type: ignore[no-untyped-def]
    """A database at 0002 as production has it: a rep, three meetings, their nudges and
    the outbox rows of those nudges, an account_at_risk nudge."""
    follow_up = {
        "event_id": "fu-1",
        "title": "Next step",
        "start": "2026-11-25T10:00:00+00:00",
        "end": "2026-11-25T10:30:00+00:00",
        "responses": {"dana@acme.com": "needs_action"},
        "seen_at": "2026-11-23T12:00:00+00:00",
    }
    conn.execute(
        text(
            "INSERT INTO reps (id, email, provider, timezone, locale, working_hours,"
            " manager_email, status, created_at) VALUES ('r1', 'anne@seller.io', 'google',"
            " 'Europe/Paris', 'en', '{}', 'boss@seller.io', 'active', :t)"
        ),
        {"t": T},
    )
    for mid, state, fu, last_kind in (
        ("m-invited", "invited", json.dumps(follow_up), "not_accepted"),
        ("m-needs", "needs_next_step", None, "no_next_step"),
        ("m-secured", "secured", json.dumps({**follow_up, "event_id": "fu-3"}), None),
    ):
        conn.execute(
            text(
                'INSERT INTO meetings (id, rep_id, event_id, title, start, "end",'
                " account_domain, external_attendees, state, follow_up, policy, tracked_from,"
                " last_nudge_at, last_nudge_kind, last_nudge_state, due_at, updated_at)"
                " VALUES (:id, 'r1', :ev, 'Acme discovery', :t, :t, 'acme.com',"
                " '[\"dana@acme.com\"]', :state, :fu, 'prospect-default', :t, :t, :kind,"
                " :state, :t, :t)"
            ),
            {"id": mid, "ev": f"ev-{mid}", "t": T, "state": state, "fu": fu, "kind": last_kind},
        )
    for nid, mid, kind in (
        ("n1", "m-invited", "not_accepted"),
        ("n2", "m-invited", "escalation"),
        ("n3", "m-needs", "no_next_step"),
        ("n4", "m-needs", "account_at_risk"),
    ):
        dedupe = f"{mid}:{kind}" if kind != "account_at_risk" else "account:acme.com:at_risk:1"
        conn.execute(
            text(
                "INSERT INTO nudges (id, dedupe_key, kind, rep_id, meeting_id, account_domain,"
                " recipient_email, payload, created_at) VALUES (:id, :key, :kind, 'r1', :mid,"
                " 'acme.com', 'anne@seller.io', :payload, :t)"
            ),
            {
                "id": nid,
                "key": dedupe,
                "kind": kind,
                "mid": mid,
                "payload": json.dumps({"id": nid, "kind": kind}),
                "t": T,
            },
        )
        conn.execute(
            text(
                "INSERT INTO deliveries (nudge_id, channel, target, status, attempts,"
                " next_attempt_at) VALUES (:id, 'webhook', 'https://crm.example/hook',"
                " :status, 1, :t)"
            ),
            {"id": nid, "status": "delivered" if nid != "n3" else "pending", "t": T},
        )


def test_0003_cycles_upgrades_meetings_nudges_and_outbox_in_place(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        command.upgrade(migrate.alembic_config(engine), "0002_drop_cursor_full")
        with engine.begin() as conn:
            _rows_of_today(conn)
        assert migrate.upgrade(engine) == migrate.head_revision(engine)
        migrate.check_schema(engine)
        with engine.connect() as conn:
            # The schema is the one models.py describes (nothing missing, nothing extra).
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
            assert diff == [], diff
            meetings = {
                r.id: r
                for r in conn.execute(
                    text(
                        "SELECT id, state, cycle, invite_round, follow_up_key, accept_from,"
                        " cycle_started_at FROM meetings"
                    )
                )
            }
            assert {k: (r.state, r.cycle, r.invite_round) for k, r in meetings.items()} == {
                "m-invited": ("invited", 0, 1),
                "m-needs": ("needs_next_step", 0, 0),
                "m-secured": ("secured", 0, 1),
            }
            assert meetings["m-invited"].follow_up_key == "fu-1@2026-11-25T10:00:00+00:00"
            assert meetings["m-secured"].follow_up_key == "fu-3@2026-11-25T10:00:00+00:00"
            assert meetings["m-needs"].follow_up_key is None
            accept_from = meetings["m-invited"].accept_from
            if isinstance(accept_from, str):  # SQLite hands raw text back to text()
                accept_from = datetime.fromisoformat(accept_from)
            assert accept_from.replace(tzinfo=UTC) == datetime(2026, 11, 23, 12, tzinfo=UTC)
            nudges = {
                r.id: (r.dedupe_key, r.cycle, r.round)
                for r in conn.execute(text('SELECT id, dedupe_key, cycle, "round" FROM nudges'))
            }
            assert nudges == {
                "n1": ("m-invited:not_accepted:0:1", 0, 1),
                "n2": ("m-invited:escalation:0:1", 0, 1),  # it escalated the not_accepted
                "n3": ("m-needs:no_next_step:0:0", 0, 0),
                "n4": ("account:acme.com:at_risk:1", None, None),
            }
            outbox = conn.execute(
                text("SELECT nudge_id, status FROM deliveries ORDER BY nudge_id")
            ).all()
            assert [tuple(r) for r in outbox] == [
                ("n1", "delivered"),
                ("n2", "delivered"),
                ("n3", "pending"),
                ("n4", "delivered"),
            ]
        # The database now refuses a second nudge of a kind in one cycle and round...
        insert = text(
            'INSERT INTO nudges (id, dedupe_key, kind, rep_id, meeting_id, cycle, "round",'
            " payload, created_at) VALUES (:id, :key, 'no_next_step', 'r1', 'm-needs', :cycle,"
            " 0, '{}', :t)"
        )
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(insert, {"id": "dup", "key": "another", "cycle": 0, "t": T})
        # ...and takes the next cycle's.
        with engine.begin() as conn:
            conn.execute(
                insert, {"id": "n5", "key": "m-needs:no_next_step:1:0", "cycle": 1, "t": T}
            )
        # The outbox still goes with its nudges.
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM reps WHERE id = 'r1'"))
            assert conn.execute(text("SELECT count(*) FROM deliveries")).scalar() == 0
    finally:
        engine.dispose()


def test_0003_cycles_downgrades_back_to_once_per_kind(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        command.upgrade(migrate.alembic_config(engine), "0002_drop_cursor_full")
        with engine.begin() as conn:
            _rows_of_today(conn)
        migrate.upgrade(engine)
        command.downgrade(migrate.alembic_config(engine), "0003_actions")  # the one before
        with engine.connect() as conn:
            keys = sorted(r[0] for r in conn.execute(text("SELECT dedupe_key FROM nudges")))
            assert keys == [
                "account:acme.com:at_risk:1",
                "m-invited:escalation",
                "m-invited:not_accepted",
                "m-needs:no_next_step",
            ]
            assert conn.execute(text("SELECT count(*) FROM deliveries")).scalar() == 4
    finally:
        engine.dispose()


async def test_0003_the_engine_on_an_upgraded_database_sends_nothing_twice(
    database_url: str,
) -> None:
    """After the upgrade, a meeting of today that already had its not_accepted keeps its
    cycle and invite round: deciding it again produces no second not_accepted."""
    from app.clock import ManualClock
    from app.config import load_settings
    from app.db.models import Meeting, Rep
    from app.main import build_runtime, close_runtime
    from app.meetings.service import evaluate

    engine = make_engine(database_url)
    try:
        command.upgrade(migrate.alembic_config(engine), "0002_drop_cursor_full")
        with engine.begin() as conn:
            _rows_of_today(conn)
            for event_id, start, end, attendees in (
                ("ev-m-invited", T, T, [{"email": "dana@acme.com", "response": "accepted"}]),
                (
                    "fu-1",
                    "2026-11-25T10:00:00+00:00",
                    "2026-11-25T10:30:00+00:00",
                    [{"email": "dana@acme.com", "response": "needs_action"}],
                ),
            ):
                conn.execute(
                    text(
                        'INSERT INTO events (rep_id, event_id, title, start, "end", all_day,'
                        " status, event_type, organizer_email, rep_response, attendees,"
                        " created, first_seen_at, updated_at, generation) VALUES ('r1', :id,"
                        " 'x', :start, :end, false, 'confirmed', 'default', 'anne@seller.io',"
                        " 'accepted', :att, :seen, :seen, :seen, 1)"
                    ),
                    {
                        "id": event_id,
                        "start": datetime.fromisoformat(start),
                        "end": datetime.fromisoformat(end),
                        "att": json.dumps(attendees),
                        "seen": datetime(2026, 11, 23, 12, tzinfo=UTC),
                    },
                )
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    settings = load_settings(
        database_url=database_url, sandbox=True, internal_domains="seller.io", api_keys="k"
    )
    now = datetime(2026, 11, 26, 8, tzinfo=UTC)  # accept_within (P2D) long closed
    rt = build_runtime(settings, clock=ManualClock(now))
    try:

        def decide_again(session):  # type: ignore[no-untyped-def]
            meeting = session.get(Meeting, "m-invited")
            decision = evaluate(session, rt, session.get(Rep, "r1"), [meeting], now=now)
            return decision["m-invited"], meeting.cycle, meeting.invite_round

        decision, cycle, invite_round = await rt.db.run(decide_again)
        assert (decision.state, cycle, invite_round) == ("invited", 0, 1)
        assert decision.nudges == ()  # its not_accepted went out before the upgrade
    finally:
        await close_runtime(rt)
