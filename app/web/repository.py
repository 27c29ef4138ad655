"""All SQL of the web pages: flows under way, who sees whom, what the pages show."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.db.models import AccountHealthRow, Calendar, Meeting, Nudge, OAuthState, Rep
from policies.vocabulary import HealthLevel, MeetingState, NudgeKind

# --- OAuth flows under way ---------------------------------------------------------------


def add_state(session: Session, row: OAuthState) -> None:
    session.add(row)


def take_state(session: Session, state_hash: str, now: datetime) -> OAuthState | None:
    """The flow of this state, removed so it is used once (also by two racing callbacks:
    only the one whose DELETE removed the row gets it); None when unknown or expired."""
    row = session.get(OAuthState, state_hash)
    if row is None:
        return None
    taken = session.execute(delete(OAuthState).where(OAuthState.state_hash == state_hash))
    if getattr(taken, "rowcount", 0) != 1:
        return None
    session.expunge(row)
    return row if row.expires_at > now else None


def states_of_browser(session: Session, binding: str) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(OAuthState).where(OAuthState.browser == binding)
        )
        or 0
    )


def prune_states(session: Session, now: datetime) -> None:
    session.execute(delete(OAuthState).where(OAuthState.expires_at <= now))


# --- people --------------------------------------------------------------------------------


def rep(session: Session, rep_id: str) -> Rep | None:
    return session.get(Rep, rep_id)


def rep_by_email(session: Session, email: str) -> Rep | None:
    return session.scalar(select(Rep).where(Rep.email == email.lower()))


def calendar_of(session: Session, rep_id: str) -> Calendar | None:
    return session.get(Calendar, rep_id)


def team_of(session: Session, manager_email: str) -> list[Rep]:
    return list(
        session.scalars(
            select(Rep)
            .where(func.lower(Rep.manager_email) == manager_email.lower())
            .order_by(Rep.email)
        )
    )


def all_reps(session: Session) -> list[Rep]:
    return list(session.scalars(select(Rep).order_by(Rep.email)))


# --- what the pages show ---------------------------------------------------------------------


def meetings_in_state(
    session: Session, rep_ids: Sequence[str], states: Sequence[MeetingState]
) -> list[Meeting]:
    if not rep_ids:
        return []
    return list(
        session.scalars(
            select(Meeting)
            .where(Meeting.rep_id.in_(rep_ids), Meeting.state.in_(states))
            .order_by(Meeting.end.desc())
        )
    )


def meetings_ended_between(
    session: Session, rep_ids: Sequence[str], lo: datetime, hi: datetime
) -> list[Meeting]:
    if not rep_ids:
        return []
    return list(
        session.scalars(
            select(Meeting).where(Meeting.rep_id.in_(rep_ids), Meeting.end >= lo, Meeting.end < hi)
        )
    )


def nudges_of(session: Session, rep_id: str, limit: int) -> list[Nudge]:
    return list(
        session.scalars(
            select(Nudge)
            .where(Nudge.rep_id == rep_id)
            .order_by(Nudge.created_at.desc(), Nudge.id)
            .limit(limit)
        )
    )


def nudges_since(
    session: Session, rep_ids: Sequence[str], since: datetime, kinds: Sequence[str] = ()
) -> list[Nudge]:
    if not rep_ids:
        return []
    query = select(Nudge).where(Nudge.rep_id.in_(rep_ids), Nudge.created_at >= since)
    if kinds:
        query = query.where(Nudge.kind.in_(kinds))
    return list(session.scalars(query))


def unanswered_window_meetings(session: Session, meeting_ids: Sequence[str]) -> set[str]:
    """Meetings for which a window closed unmet (a nudge of a window kind was produced)."""
    if not meeting_ids:
        return set()
    kinds = (NudgeKind.NO_NEXT_STEP, NudgeKind.NOT_ACCEPTED, NudgeKind.FOLLOW_UP_DECLINED)
    return set(
        session.scalars(
            select(Nudge.meeting_id).where(
                Nudge.meeting_id.in_(meeting_ids), Nudge.kind.in_([str(k) for k in kinds])
            )
        )
    )


def health_at_risk(session: Session, domains: Sequence[str]) -> list[AccountHealthRow]:
    if not domains:
        return []
    return list(
        session.scalars(
            select(AccountHealthRow)
            .where(
                AccountHealthRow.domain.in_(domains),
                AccountHealthRow.level.in_([HealthLevel.AT_RISK, HealthLevel.WATCH]),
            )
            .order_by(AccountHealthRow.score, AccountHealthRow.domain)
        )
    )
