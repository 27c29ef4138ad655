"""All SQL about calendars' sync state: cursors, coalesced sync requests, leases."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from app.db.leases import claim_one, next_time
from app.db.models import Calendar, Rep, WatchChannelRow


def want_sync(session: Session, rep_id: str, now: datetime, min_interval: timedelta) -> None:
    """Set ``sync_wanted_at`` (now, or ``min_interval`` after the last sync) and bump
    ``sync_seq``; a retry scheduled later is left alone."""
    soon = (
        case(
            (
                and_(Calendar.synced_at.is_not(None), Calendar.synced_at > now - min_interval),
                now + min_interval,
            ),
            else_=now,
        )
        if min_interval > timedelta(0)
        else now
    )
    session.execute(
        update(Calendar)
        .where(Calendar.rep_id == rep_id)
        .values(
            sync_wanted_at=case(
                (or_(Calendar.sync_wanted_at.is_(None), Calendar.sync_wanted_at <= now), soon),
                else_=Calendar.sync_wanted_at,
            ),
            sync_seq=Calendar.sync_seq + 1,
        )
        .execution_options(synchronize_session=False)
    )


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
            select(Calendar.rep_id).where(
                Calendar.sync_wanted_at.is_(None),
                or_(Calendar.synced_at.is_(None), Calendar.synced_at < now - interval),
            )
        )
    )


def earliest_due(session: Session, now: datetime) -> datetime | None:
    return next_time(session, Calendar, Calendar.sync_wanted_at, now)
