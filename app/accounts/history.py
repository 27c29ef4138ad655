"""Per-event history of meetings with external domains (account health, issue 5).

``record`` is called by app.meetings.service.apply_changes for every page of calendar
changes, inside the page's transaction, before the events table is updated: ``old`` maps
event ids to the rows as they were, ``changed`` are the new versions, ``gone`` the rows
being removed. ``initial`` is true for a calendar's first full sync (the past as the
calendar still shows it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from app.db.models import Event, Rep
from connectors.base import CalendarEvent

if TYPE_CHECKING:
    from app.runtime import Runtime


def record(
    session: Session,
    rt: Runtime,
    rep: Rep,
    *,
    old: dict[str, Event],
    changed: Sequence[CalendarEvent],
    gone: Sequence[Event],
    now: datetime,
    initial: bool,
) -> None:
    """Record what changed for meetings with external domains (nothing recorded yet)."""
    return None
