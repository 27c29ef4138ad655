"""NEXTSTEP_RETENTION_DAYS: the prune job forgets calendar events, account history,
finished meetings and nudges (with their deliveries) older than it, and keeps the rest —
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app import providers as registry
from app.config import load_settings
from app.db.models import AccountHistory, Delivery, Event, Meeting, Nudge
from app.errors import ConfigError
from app.scheduler import jobs
from tests.conftest import START
from tests.helpers.calendar import REP, event, register

H, D = timedelta(hours=1), timedelta(days=1)
MODELS = (Event, AccountHistory, Meeting, Nudge, Delivery)


async def _counts(rt) -> dict[str, int]:  # type: ignore[no-untyped-def]
    def count(session):  # type: ignore[no-untyped-def]
        return {
            m.__tablename__: session.scalar(select(func.count()).select_from(m)) for m in MODELS
        }

    return await rt.db.run(count)


async def test_prune_forgets_what_is_older_than_the_retention(rt, sim) -> None:
    rt.settings = rt.settings.model_copy(update={"retention_days": 30})
    await register(rt)
    sb = registry.sandbox(rt.providers)
    old = event(START + H, title="Acme discovery")
    sb.put_event(REP, old)
    await sim.run_until(START + 6 * H)  # its no_next_step nudge is out
    before = await _counts(rt)
    assert all(before.values()), before

    later = START + 40 * D
    await sim.run_until(later - 2 * D)
    recent = event(later - D, title="Acme pricing", guests=("bob@acme.com",))
    sb.put_event(REP, recent)
    await sim.run_until(later)
    assert await jobs.prune(rt) > 0

    meetings = await rt.db.run(lambda s: s.scalars(select(Meeting.event_id)).all())
    assert meetings == [recent.event_id]
    events = await rt.db.run(lambda s: s.scalars(select(Event.event_id)).all())
    assert old.event_id not in events and recent.event_id in events
    cutoff = later - 30 * D
    nudges = await rt.db.run(lambda s: s.scalars(select(Nudge.created_at)).all())
    assert nudges and all(at >= cutoff for at in nudges)
    history = await rt.db.run(lambda s: s.scalars(select(AccountHistory.event_id)).all())
    assert old.event_id not in history and recent.event_id in history
    orphans = await rt.db.run(
        lambda s: s.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(~select(Nudge.id).where(Nudge.id == Delivery.nudge_id).exists())
        )
    )
    assert orphans == 0
    assert await jobs.prune(rt) == 0  # nothing more to forget


def test_retention_is_bounded_and_named() -> None:
    assert load_settings(database_url="sqlite:///./x.db").retention_days == 730
    for bad in ("7", "abc"):
        with pytest.raises(ConfigError, match="NEXTSTEP_RETENTION_DAYS"):
            load_settings(database_url="sqlite:///./x.db", retention_days=bad)
