"""Webhook intake's group commit: notifications arriving together are verified and stored
in one transaction, each answered on its own merits (accepted, duplicate, refused), and
the channels held in memory never let a stopped or forged channel through."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import delete, func, select

from app.db.models import Calendar, WatchChannelRow
from app.db.models import Notification as NotificationRow
from app.errors import Forbidden
from app.webhooks.service import receive
from connectors.base import Notification
from tests.helpers.calendar import register


async def _channel(rt, rep_id: str) -> WatchChannelRow:  # type: ignore[no-untyped-def]
    return await rt.db.run(
        lambda s: s.scalars(select(WatchChannelRow).where(WatchChannelRow.rep_id == rep_id)).one()
    )


def _note(ch: WatchChannelRow, n: int, *, secret: str | None = None) -> Notification:
    return Notification(
        channel_id=ch.channel_id,
        secret=ch.token if secret is None else secret,
        dedupe_key=f"{ch.channel_id}:{n}",
    )


async def _stored(rt) -> set[str]:  # type: ignore[no-untyped-def]
    return set(await rt.db.run(lambda s: s.scalars(select(NotificationRow.dedupe_key)).all()))


async def _answers(rt, notes: list[Notification]) -> list[object]:  # type: ignore[no-untyped-def]
    return await asyncio.gather(*(receive(rt, "sandbox", n) for n in notes), return_exceptions=True)


async def test_a_batch_answers_each_notification_on_its_own_merits(rt, sim):
    a = (await register(rt, "anne@seller.io"))["id"]
    b = (await register(rt, "bob@seller.io"))["id"]
    await sim.settle()
    ca, cb = await _channel(rt, a), await _channel(rt, b)
    before = await _stored(rt)
    seq_before = dict(
        await rt.db.run(lambda s: s.execute(select(Calendar.rep_id, Calendar.sync_seq)).all())
    )
    unknown = Notification(channel_id="nope", secret="x", dedupe_key="nope:1")
    notes = [
        _note(ca, 101),
        _note(ca, 101),  # the same delivery twice, in the same batch
        _note(cb, 101, secret="forged"),
        unknown,
        _note(cb, 102),
        _note(ca, 103),
    ]
    got = await _answers(rt, notes)
    assert got[0] is True and got[1] is False  # stored once, the second is a duplicate
    assert isinstance(got[2], Forbidden) and isinstance(got[3], Forbidden)
    assert got[4] is True and got[5] is True
    new = await _stored(rt) - before
    assert new == {
        f"sandbox:{ca.channel_id}:101",
        f"sandbox:{cb.channel_id}:102",
        f"sandbox:{ca.channel_id}:103",
    }
    seq = dict(
        await rt.db.run(lambda s: s.execute(select(Calendar.rep_id, Calendar.sync_seq)).all())
    )
    assert seq[a] > seq_before[a] and seq[b] > seq_before[b]  # both calendars want a sync
    wanted = await rt.db.run(
        lambda s: s.scalars(
            select(Calendar.rep_id).where(Calendar.sync_wanted_at.is_not(None))
        ).all()
    )
    assert set(wanted) == {a, b}
    # A redelivery later is a duplicate too, and asks for nothing.
    assert await _answers(rt, [_note(ca, 101)]) == [False]


async def test_a_forged_notification_is_refused_whether_the_channel_is_in_memory_or_not(rt, sim):
    a = (await register(rt))["id"]
    await sim.settle()
    ch = await _channel(rt, a)
    rt.channel_cache.clear()
    (cold,) = await _answers(rt, [_note(ch, 201, secret="guess")])  # read from the database
    assert isinstance(cold, Forbidden)
    assert await _answers(rt, [_note(ch, 202)]) == [True]  # now held in memory
    (warm,) = await _answers(rt, [_note(ch, 203, secret="guess")])
    assert isinstance(warm, Forbidden)
    stored = await _stored(rt)
    assert f"sandbox:{ch.channel_id}:202" in stored
    assert not {f"sandbox:{ch.channel_id}:201", f"sandbox:{ch.channel_id}:203"} & stored


async def test_a_channel_stopped_after_it_was_held_in_memory_is_refused(rt, sim):
    a = (await register(rt))["id"]
    await sim.settle()
    ch = await _channel(rt, a)
    assert await _answers(rt, [_note(ch, 301)]) == [True]
    assert ch.channel_id in rt.channel_cache
    # Another replica stops the channel: this process's memory does not know.
    await rt.db.run(
        lambda s: s.execute(
            delete(WatchChannelRow).where(WatchChannelRow.channel_id == ch.channel_id)
        )
    )
    (got,) = await _answers(rt, [_note(ch, 302)])
    assert isinstance(got, Forbidden)
    assert ch.channel_id not in rt.channel_cache
    n = await rt.db.run(
        lambda s: s.scalar(
            select(func.count()).where(NotificationRow.dedupe_key.like(f"%{ch.channel_id}:302"))
        )
    )
    assert n == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_many_notifications_at_once_are_all_stored_and_each_acknowledged(rt, sim):
    reps = [(await register(rt, f"r{i}@seller.io"))["id"] for i in range(5)]
    await sim.settle()
    chans = [await _channel(rt, r) for r in reps]
    before = await _stored(rt)
    notes = [_note(chans[i % 5], 1000 + i) for i in range(300)]
    got = await _answers(rt, notes)
    assert got == [True] * 300
    assert len(await _stored(rt) - before) == 300
