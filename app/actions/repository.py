"""All SQL of the action pages: the nudge a token names, and whether a newer one replaced it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import ActionResult, Nudge
from policies.vocabulary import NudgeKind


def nudge(session: Session, nudge_id: str) -> Nudge | None:
    return session.get(Nudge, nudge_id)


def newer_nudge(session: Session, n: Nudge) -> Nudge | None:
    """A later nudge of the same meeting that opened a new cycle (the meeting went back to
    ``needs_next_step``); an escalation or a ``not_accepted`` of the same cycle replaces
    nothing."""
    if n.meeting_id is None:
        return None
    return session.scalars(
        select(Nudge)
        .where(
            Nudge.meeting_id == n.meeting_id,
            Nudge.created_at > n.created_at,
            Nudge.kind.in_([NudgeKind.NO_NEXT_STEP, NudgeKind.FOLLOW_UP_DECLINED]),
        )
        .limit(1)
    ).first()


def events_sent_by(session: Session, nudge_id: str) -> set[str]:
    """The provider event ids this nudge's ``send_invite`` actions created or moved."""
    rows = session.scalars(
        select(ActionResult).where(ActionResult.key.startswith(f"action:{nudge_id}:send_invite:"))
    )
    return {str(r.result["event_id"]) for r in rows if r.result and r.result.get("event_id")}
