"""All SQL about reps and their calendars."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Calendar, Rep, WatchChannelRow


def by_email(session: Session, email: str) -> Rep | None:
    return session.scalar(select(Rep).where(Rep.email == email.lower()))


def all_reps(session: Session) -> list[Rep]:
    return list(session.scalars(select(Rep).order_by(Rep.created_at, Rep.id)))


def channels_of(session: Session, rep_id: str) -> list[WatchChannelRow]:
    return list(
        session.scalars(
            select(WatchChannelRow)
            .where(WatchChannelRow.rep_id == rep_id)
            .order_by(WatchChannelRow.expires_at)
        )
    )


def calendar_of(session: Session, rep_id: str) -> Calendar | None:
    return session.get(Calendar, rep_id)
