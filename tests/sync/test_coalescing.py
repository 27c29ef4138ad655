"""Bursts of notifications coalesce: one sync in flight plus at most one after it, and a
calendar synced less than NEXTSTEP_SYNC_MIN_INTERVAL_SECONDS ago waits that long."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import START
from tests.helpers.calendar import REP, event, register, state_of


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_burst_after_a_sync_becomes_one_sync_a_second_later(rt, sim):
    rt.settings = rt.settings.model_copy(update={"sync_min_interval_seconds": 1.0})
    rep = await register(rt)
    sb = rt.providers["sandbox"]
    sim.clock.set(START + timedelta(minutes=5))
    first = sb.put_event(REP, event(START + timedelta(hours=1)))  # quiet calendar: at once
    await sim.settle()
    assert await state_of(rt, rep["id"], first.event_id) == "upcoming"
    before = sb.calls["sync_page"]
    burst = [
        sb.put_event(REP, event(START + timedelta(hours=2 + i), title=f"m{i}")) for i in range(20)
    ]
    await sim.settle()
    assert sb.calls["sync_page"] == before  # synced a moment ago: this burst waits
    assert await state_of(rt, rep["id"], burst[-1].event_id) is None
    await sim.run_until(sim.clock.now() + timedelta(seconds=1))
    assert sb.calls["sync_page"] == before + 1  # twenty notifications, one sync
    for ev in burst:
        assert await state_of(rt, rep["id"], ev.event_id) == "upcoming"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_notification_during_a_sync_means_exactly_one_more_round(rt, sim):
    from app.sync.service import sync_due

    rep = await register(rt)
    sb = rt.providers["sandbox"]
    sb.put_event(REP, event(START + timedelta(hours=1)))
    await sb.drain()
    original = sb.sync_page
    late: list[str] = []

    async def sync_page_with_changes_arriving(*args, **kwargs):  # type: ignore[no-untyped-def]
        page = await original(*args, **kwargs)
        if not late:  # three changes land while the first round is in flight
            late.extend(
                sb.put_event(REP, event(START + timedelta(hours=3 + i))).event_id for i in range(3)
            )
            await sb.drain()
        return page

    sb.sync_page = sync_page_with_changes_arriving  # type: ignore[method-assign]
    before = sb.calls["sync_page"]
    assert await sync_due(rt) == 1
    assert await sync_due(rt) == 1  # the one round after
    assert await sync_due(rt) == 0  # and no more
    assert sb.calls["sync_page"] == before + 2
    for eid in late:
        assert await state_of(rt, rep["id"], eid) == "upcoming"
