"""Short leases renewed by a heartbeat while the work is in hand: work that outlasts a
lease stays with its replica; what is not in hand (done, handed back, or forgotten by a
handler that crashed) is not renewed, so another replica takes it once the lease is
over — on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from app.config import load_settings
from app.db.leases import Holdings, claim_due, work_through
from app.db.models import Calendar
from app.scheduler import jobs
from app.sync import repository as sync_repo
from tests.helpers.calendar import register


def test_the_default_lease_is_short() -> None:
    assert load_settings(database_url="sqlite:///./x.db").lease_seconds == 15


async def _want_sync(rt, rep_id: str) -> None:  # type: ignore[no-untyped-def]
    await rt.db.run(sync_repo.want_sync, rep_id, rt.clock.now(), timedelta(0))


async def _claim(rt) -> list[str]:  # type: ignore[no-untyped-def]
    _, keys = await claim_due(
        rt, Calendar, key=Calendar.rep_id, due=Calendar.sync_wanted_at, limit=10
    )
    return keys


async def test_work_in_hand_keeps_its_lease_past_the_lease_time(rt, clock) -> None:
    rep = await register(rt)
    other = replace(rt, instance_id="other-replica", held=Holdings())
    await _want_sync(rt, rep["id"])
    claimed_at, keys = await claim_due(
        rt, Calendar, key=Calendar.rep_id, due=Calendar.sync_wanted_at, limit=10
    )
    assert keys == [rep["id"]]
    seen_by_other: list[list[str]] = []

    async def slow(rep_id: str) -> None:
        for _ in range(4):  # four lease lengths of work, the heartbeat beating meanwhile
            clock.advance(rt.lease * 0.9)
            assert await jobs.heartbeat(rt) == 1
            seen_by_other.append(await _claim(other))

    await work_through(
        rt, Calendar, key=Calendar.rep_id, items=keys, claimed_at=claimed_at, handle=slow
    )
    assert seen_by_other == [[], [], [], []]
    assert rt.held.snapshot() == []  # done: no longer in hand
    assert await jobs.heartbeat(rt) == 0
    clock.advance(rt.lease)
    assert await _claim(other) == [rep["id"]]  # its lease ran out: another takes it


async def test_a_row_a_crashed_handler_left_is_not_renewed(rt, clock) -> None:
    rep = await register(rt)
    other = replace(rt, instance_id="other-replica", held=Holdings())
    await _want_sync(rt, rep["id"])
    claimed_at, keys = await claim_due(
        rt, Calendar, key=Calendar.rep_id, due=Calendar.sync_wanted_at, limit=10
    )

    async def crash(rep_id: str) -> None:
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError):
        await work_through(
            rt, Calendar, key=Calendar.rep_id, items=keys, claimed_at=claimed_at, handle=crash
        )
    assert rt.held.snapshot() == []
    clock.advance(rt.lease * 0.9)
    assert await jobs.heartbeat(rt) == 0
    assert await _claim(other) == []
    clock.advance(rt.lease * 0.2)
    assert await _claim(other) == [rep["id"]]


def test_holdings_count_nested_holds() -> None:
    held = Holdings()
    held.add(Calendar, Calendar.rep_id, ["a", "b"])
    with held.holding(Calendar, Calendar.rep_id, ["a"]):
        held.discard(Calendar, Calendar.rep_id, ["a"])
        assert held.snapshot() == [(Calendar, Calendar.rep_id, ["a", "b"])]
    assert held.snapshot() == [(Calendar, Calendar.rep_id, ["b"])]
    held.discard(Calendar, Calendar.rep_id, ["b", "zzz"])
    assert held.snapshot() == []
