"""All SQL of the webhook intake: the stored channels it checks, the notifications it keeps."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.db.leases import insert_ignore
from app.db.models import Notification, WatchChannelRow
from connectors.base import WatchChannel


class StoredChannel(NamedTuple):
    """A channel as stored for a rep, in the provider-neutral form notifications check."""

    channel: WatchChannel
    rep_id: str
    provider: str = ""


# Built once: the intake runs these for every batch of notifications, and a statement
# object reused keeps its cache key, so SQLAlchemy neither rebuilds nor recompiles it.
_CHANNELS = select(
    WatchChannelRow.channel_id,
    WatchChannelRow.token,
    WatchChannelRow.resource_id,
    WatchChannelRow.expires_at,
    WatchChannelRow.rep_id,
    WatchChannelRow.provider,
).where(WatchChannelRow.channel_id.in_(bindparam("ids", expanding=True)))
_RECORD = {
    name: ins(Notification)  # the columns come with the parameters, typed by the table
    .on_conflict_do_nothing(index_elements=["dedupe_key"])
    .returning(Notification.dedupe_key)
    for name, ins in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


def stored_channels(session: Session, channel_ids: Collection[str]) -> dict[str, StoredChannel]:
    """The stored channels among ``channel_ids`` (any provider), by channel id: one query."""
    # Core, on the session's connection: no ORM compile step for a plain column read.
    rows = session.connection().execute(_CHANNELS, {"ids": list(channel_ids)})
    return {
        r.channel_id: StoredChannel(
            WatchChannel(
                channel_id=r.channel_id,
                token=r.token,
                resource_id=r.resource_id,
                expires_at=r.expires_at,
            ),
            r.rep_id,
            r.provider,
        )
        for r in rows
    }


def record_many(session: Session, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Keep notifications under their unique keys (``dedupe_key`` already prefixed with
    the provider, each key once); returns the keys that were new."""
    if not rows:
        return set()
    conn = session.connection()
    stmt = _RECORD[conn.dialect.name]
    if len(rows) == 1:
        return set(conn.execute(stmt, rows[0]).scalars())
    # executemany with RETURNING: SQLAlchemy sends it as multi-row INSERTs ("insertmanyvalues")
    return set(conn.execute(stmt, list(rows)).scalars())


def stored_channel(session: Session, provider: str, channel_id: str) -> StoredChannel | None:
    """The stored channel ``channel_id`` of ``provider``, or None."""
    stored = stored_channels(session, (channel_id,)).get(channel_id)
    return stored if stored is not None and stored.provider == provider else None


def record(
    session: Session, *, provider: str, dedupe_key: str, rep_id: str, kind: str, now: datetime
) -> bool:
    """Keep one notification under its unique key; False when it was already kept."""
    return insert_ignore(
        session,
        Notification,
        {
            "dedupe_key": f"{provider}:{dedupe_key}",
            "provider": provider,
            "rep_id": rep_id,
            "kind": kind,
            "received_at": now,
        },
    )


def renew_now(session: Session, channel_id: str, now: datetime) -> None:
    """Make the channel due for renewal now, whoever held its renewal lease."""
    row = session.get(WatchChannelRow, channel_id)
    if row is not None:
        row.renew_at = now
        row.lease_owner = row.lease_until = None


def prune(session: Session, before: datetime) -> int:
    """Forget notifications received before ``before``; returns how many."""
    result = session.execute(delete(Notification).where(Notification.received_at < before))
    return result.rowcount  # type: ignore[attr-defined,no-any-return]
