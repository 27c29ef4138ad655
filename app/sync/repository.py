"""All SQL about calendars' sync state: cursors, coalesced sync requests, leases."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, case, delete, func, or_, select, update
from sqlalchemy.orm import Session

from app.db.leases import claim_one, next_time
from app.db.models import Calendar, Rep, UTCDateTime, WatchChannelRow
from connectors.base import WatchChannel
from policies.vocabulary import RepStatus

# Built once (bind parameters, no per-call construction): the webhook intake runs it for
# every batch of notifications. ``recent``/``later`` are ``now ∓ min_interval``.
_NOW = bindparam("now", type_=UTCDateTime())
_WANT_SYNC = (
    update(Calendar)
    .where(Calendar.rep_id.in_(bindparam("rep_ids", expanding=True)))
    .values(
        sync_wanted_at=case(
            (
                or_(Calendar.sync_wanted_at.is_(None), Calendar.sync_wanted_at <= _NOW),
                case(
                    (
                        and_(
                            Calendar.synced_at.is_not(None),
                            Calendar.synced_at > bindparam("recent", type_=UTCDateTime()),
                        ),
                        bindparam("later", type_=UTCDateTime()),
                    ),
                    else_=_NOW,
                ),
            ),
            else_=Calendar.sync_wanted_at,
        ),
        sync_seq=Calendar.sync_seq + 1,
    )
    .returning(Calendar.sync_wanted_at)
)


def want_sync(session: Session, rep_id: str, now: datetime, min_interval: timedelta) -> None:
    """Set ``sync_wanted_at`` (now, or ``min_interval`` after the last sync) and bump
    ``sync_seq``; a retry scheduled later is left alone."""
    want_sync_many(session, (rep_id,), now, min_interval)


def want_sync_many(
    session: Session, rep_ids: Collection[str], now: datetime, min_interval: timedelta
) -> datetime | None:
    """``want_sync`` for several calendars in one statement; returns the earliest time a
    sync of theirs is now wanted (None: none of them exists)."""
    if not rep_ids:
        return None
    # With no interval ``later`` is ``now``: wanted now either way.
    interval = max(min_interval, timedelta(0))
    wanted = session.connection().execute(  # Core: no ORM bulk-update step
        _WANT_SYNC,
        {
            "rep_ids": list(rep_ids),
            "now": now,
            "recent": now - interval,
            "later": now + interval,
        },
    )
    return min((t for t in wanted.scalars() if t is not None), default=None)


def want_full_sync(session: Session, rep_id: str, now: datetime) -> bool:
    """Forget the cursor and want a sync now (whatever retry was planned); False: no
    calendar."""
    result = session.execute(
        update(Calendar)
        .where(Calendar.rep_id == rep_id)
        .values(cursor=None, sync_wanted_at=now, sync_seq=Calendar.sync_seq + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def claim(session: Session, rep_id: str, *, now: datetime, owner: str, lease: timedelta) -> bool:
    """Lease one calendar for a sync round (free, or already ours)."""
    return claim_one(
        session, Calendar, key=Calendar.rep_id, value=rep_id, now=now, owner=owner, lease=lease
    )


def calendar(session: Session, rep_id: str) -> Calendar | None:
    return session.get(Calendar, rep_id)


def rep(session: Session, rep_id: str) -> Rep | None:
    return session.get(Rep, rep_id)


def has_channel(session: Session, rep_id: str) -> bool:
    """Whether the rep's calendar has a live push channel or subscription stored."""
    n = session.scalar(
        select(func.count()).select_from(WatchChannelRow).where(WatchChannelRow.rep_id == rep_id)
    )
    return bool(n)


def quiet(session: Session, now: datetime, interval: timedelta) -> list[str]:
    """Calendars not synced within ``interval`` that no sync is wanted for."""
    return list(
        session.scalars(
            select(Calendar.rep_id)
            .join(Rep, Rep.id == Calendar.rep_id)
            .where(
                Calendar.sync_wanted_at.is_(None),
                or_(Calendar.synced_at.is_(None), Calendar.synced_at < now - interval),
                Rep.status != RepStatus.PENDING_CONNECTION,  # nothing to sync before it
            )
        )
    )


def earliest_due(session: Session, now: datetime) -> datetime | None:
    return next_time(session, Calendar, Calendar.sync_wanted_at, now)


# --- watch channels (Google push channels, Graph subscriptions) ---------------------------


def store_channel(
    session: Session,
    rep_id: str,
    provider: str,
    ch: WatchChannel,
    now: datetime,
    renew_before: timedelta,
) -> datetime:
    """Insert or refresh a live channel; returns when it is to be renewed (at the latest
    half-way through its life)."""
    life = ch.expires_at - now
    renew_before = min(renew_before, life / 2)
    row = session.get(WatchChannelRow, ch.channel_id)
    if row is None:
        row = WatchChannelRow(
            channel_id=ch.channel_id, rep_id=rep_id, provider=provider, created_at=now
        )
        session.add(row)
    row.token = ch.token
    row.resource_id = ch.resource_id
    row.expires_at = ch.expires_at
    row.renew_at = ch.expires_at - renew_before
    row.lease_owner = None
    row.lease_until = None
    return row.renew_at


def unwatched_reps(
    session: Session, registered_before: datetime, providers: list[str]
) -> list[str]:
    """Reps of these providers with no channel at all, registered before the given time."""
    has_channel = select(WatchChannelRow.rep_id).where(WatchChannelRow.rep_id == Rep.id).exists()
    return list(
        session.scalars(
            select(Rep.id).where(
                ~has_channel,
                Rep.created_at < registered_before,
                Rep.provider.in_(providers),
                Rep.status != RepStatus.PENDING_CONNECTION,
            )
        )
    )


def channel_for_renewal(
    session: Session, channel_id: str
) -> tuple[WatchChannelRow, Rep, bool] | None:
    """The channel, its rep, and whether a longer-lived channel of the same calendar exists
    (stored by a renewal whose process died before stopping this one)."""
    row = session.get(WatchChannelRow, channel_id)
    if row is None:
        return None
    owner = session.get(Rep, row.rep_id)
    if owner is None:
        return None
    superseded = (
        session.scalar(
            select(WatchChannelRow.channel_id)
            .where(
                WatchChannelRow.rep_id == row.rep_id,
                WatchChannelRow.channel_id != channel_id,
                WatchChannelRow.expires_at > row.expires_at,
            )
            .limit(1)
        )
        is not None
    )
    return row, owner, superseded


def forget_channel(session: Session, channel_id: str) -> None:
    session.execute(delete(WatchChannelRow).where(WatchChannelRow.channel_id == channel_id))


def renew_later(session: Session, channel_id: str, at: datetime) -> None:
    """A renewal failed: try again at ``at``, lease handed back."""
    row = session.get(WatchChannelRow, channel_id)
    if row is not None:
        row.renew_at, row.lease_owner, row.lease_until = at, None, None


def next_renewal(session: Session, now: datetime) -> datetime | None:
    return next_time(session, WatchChannelRow, WatchChannelRow.renew_at, now)
