"""cycles: a nudge once per meeting, kind and cycle (and invite round); shared meetings

Revision ID: 0003_cycles
Revises: 0003_actions
Create Date: 2026-12-06

The rule holds every time (CONTRACT.md): a meeting that goes back to ``needs_next_step``
opens a new cycle, and each new follow-up invite or move of it starts its own
``accept_within``. Meetings gain their cycle state; nudges gain ``cycle`` and ``round``
and a unique index on (meeting_id, kind, cycle, round). Only columns are added and an
index created: no table is rebuilt (on SQLite, rebuilding nudges would cascade to the
outbox).

Upgrades a database of today in place, with its data:
- every meeting is in its first cycle (0); one that has a follow-up is in its first
  invite round (1), counted from when that invite appeared, so nothing it already had
  comes again;
- every meeting nudge of today belongs to cycle 0: ``not_accepted`` to round 1, an
  escalation to round 1 when it escalated a ``not_accepted``, else 0; its ``dedupe_key``
  takes the new form ``<meeting>:<kind>:<cycle>:<round>``;
- account_at_risk nudges and CRM events keep null cycle and round (never a collision);
- events and meetings gain ``ical_uid`` (null until the next sync lists them): one
  meeting on several reps' calendars is one meeting for the rule.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003_cycles"
down_revision = "0003_signin"
branch_labels = None
depends_on = None

MEETING_KINDS = ("no_next_step", "not_accepted", "follow_up_declined", "escalation")


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _utc(value: Any) -> datetime | None:
    """A stored or JSON time as an aware UTC datetime."""
    if value is None:
        return None
    dt = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def upgrade() -> None:
    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cycle", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("cycle_started_at", sa.DateTime(timezone=True)))
        batch_op.add_column(
            sa.Column("invite_round", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("follow_up_key", sa.String(length=1100)))
        batch_op.add_column(sa.Column("accept_from", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("ical_uid", sa.String(length=1100)))
        batch_op.create_index("ix_meetings_ical_uid", ["ical_uid"], unique=False)
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ical_uid", sa.String(length=1100)))
    with op.batch_alter_table("nudges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cycle", sa.Integer()))
        batch_op.add_column(sa.Column("round", sa.Integer()))

    conn = op.get_bind()
    sqlite = conn.dialect.name == "sqlite"
    meetings = sa.table(
        "meetings",
        sa.column("id", sa.String),
        sa.column("follow_up", sa.JSON),
        sa.column("last_nudge_kind", sa.String),
        sa.column("invite_round", sa.Integer),
        sa.column("follow_up_key", sa.String),
        sa.column("accept_from", sa.DateTime(timezone=True)),
    )
    nudges = sa.table(
        "nudges",
        sa.column("id", sa.String),
        sa.column("dedupe_key", sa.String),
        sa.column("kind", sa.String),
        sa.column("meeting_id", sa.String),
        sa.column("cycle", sa.Integer),
        sa.column("round", sa.Integer),
    )
    escalated_not_accepted: set[str] = set()
    for mid, follow_up, last_kind in conn.execute(
        sa.select(meetings.c.id, meetings.c.follow_up, meetings.c.last_nudge_kind)
    ):
        if last_kind == "not_accepted":
            escalated_not_accepted.add(mid)
        fu = _json(follow_up)
        if not fu:
            continue
        start = _utc(fu["start"])
        seen = _utc(fu.get("seen_at"))
        assert start is not None
        accept_from = None
        if seen is not None:
            accept_from = seen.replace(tzinfo=None) if sqlite else seen
        conn.execute(
            meetings.update()
            .where(meetings.c.id == mid)
            .values(
                invite_round=1,
                follow_up_key=f"{fu['event_id']}@{start.isoformat()}",
                accept_from=accept_from,
            )
        )
    for nid, mid, kind in conn.execute(
        sa.select(nudges.c.id, nudges.c.meeting_id, nudges.c.kind).where(
            nudges.c.meeting_id.is_not(None), nudges.c.kind.in_(MEETING_KINDS)
        )
    ):
        rnd = 1 if kind == "not_accepted" else 0
        if kind == "escalation" and mid in escalated_not_accepted:
            rnd = 1
        conn.execute(
            nudges.update()
            .where(nudges.c.id == nid)
            .values(cycle=0, round=rnd, dedupe_key=f"{mid}:{kind}:0:{rnd}")
        )

    # A unique index, not a table constraint: on SQLite a constraint means rebuilding the
    # table, and dropping the old nudges table would cascade to the outbox's deliveries.
    with op.batch_alter_table("nudges", schema=None) as batch_op:
        batch_op.create_index(
            "uq_nudges_meeting_kind_cycle_round",
            ["meeting_id", "kind", "cycle", "round"],
            unique=True,
        )


def downgrade() -> None:
    """Back to once per meeting and kind: of each meeting's nudges of one kind the first
    stays (its deliveries too); later cycles' and rounds' nudges go."""
    conn = op.get_bind()
    nudges = sa.table(
        "nudges",
        sa.column("id", sa.String),
        sa.column("dedupe_key", sa.String),
        sa.column("kind", sa.String),
        sa.column("meeting_id", sa.String),
        sa.column("cycle", sa.Integer),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    deliveries = sa.table("deliveries", sa.column("nudge_id", sa.String))
    kept: set[tuple[str, str]] = set()
    rows = conn.execute(
        sa.select(nudges.c.id, nudges.c.meeting_id, nudges.c.kind)
        .where(nudges.c.cycle.is_not(None))
        .order_by(nudges.c.created_at, nudges.c.id)
    ).all()
    for nid, mid, kind in rows:
        if (mid, kind) in kept:
            conn.execute(deliveries.delete().where(deliveries.c.nudge_id == nid))
            conn.execute(nudges.delete().where(nudges.c.id == nid))
            continue
        kept.add((mid, kind))
        conn.execute(nudges.update().where(nudges.c.id == nid).values(dedupe_key=f"{mid}:{kind}"))
    op.drop_index("uq_nudges_meeting_kind_cycle_round", table_name="nudges")
    # Plain ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35): a batch rebuild of nudges would
    # cascade to the outbox's deliveries on SQLite.
    op.execute('ALTER TABLE nudges DROP COLUMN "round"')
    op.execute("ALTER TABLE nudges DROP COLUMN cycle")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("ical_uid")
    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.drop_index("ix_meetings_ical_uid")
        for column in ("ical_uid", "accept_from", "follow_up_key", "invite_round"):
            batch_op.drop_column(column)
        batch_op.drop_column("cycle_started_at")
        batch_op.drop_column("cycle")
