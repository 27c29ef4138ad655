"""Meetings due together are processed together: several at once, one free/busy call per
calendar for the batch, and each nudge still once, with the slots its own window gives."""

from __future__ import annotations

from datetime import datetime, timedelta

from connectors.base import ProviderError
from tests.conftest import START
from tests.helpers.calendar import REP, event, register

H = timedelta(hours=1)


def _five_meetings(sb) -> None:  # type: ignore[no-untyped-def]
    for i in range(5):
        sb.put_event(REP, event(START + H, guests=(f"buyer@p{i}.com",), title=f"Discovery {i}"))
    # Tuesday 15:00–16:00 Paris is taken: no nudge may suggest it.
    sb.put_event(REP, event(START + 30 * H, guests=("bob@seller.io",), title="Internal"))


async def test_meetings_due_together_share_one_free_busy_call(rt, sim, channel):
    await register(rt, timezone="Europe/Paris")
    sb = rt.providers["sandbox"]
    _five_meetings(sb)
    await sim.settle()
    before = sb.calls.get("free_busy", 0)
    await sim.run_until(START + 6 * H)  # all five windows closed at +4h
    assert sorted(channel.kinds()) == ["no_next_step"] * 5
    assert sb.calls.get("free_busy", 0) - before == 1
    firsts = {n.payload["suggested_slots"][0]["start"] for n in channel.sent}
    assert len(firsts) == 1  # the same calendar, the same window: the same slots
    assert all(n.payload["busy_source"] == "provider" for n in channel.sent)
    busy = (START + 30 * H, START + 31 * H)
    for n in channel.sent:
        for s in n.payload["suggested_slots"]:
            start, end = datetime.fromisoformat(s["start"]), datetime.fromisoformat(s["end"])
            assert end <= busy[0] or start >= busy[1]
    await sim.run_until(START + timedelta(days=1))
    assert sorted(channel.kinds()) == ["no_next_step"] * 5  # each once


async def test_when_the_shared_free_busy_call_fails_each_nudge_uses_the_synced_calendar(
    rt, sim, channel
):
    await register(rt, timezone="Europe/Paris")
    sb = rt.providers["sandbox"]
    _five_meetings(sb)
    await sim.settle()
    sb.fail_next.append(ProviderError("free/busy is down"))
    await sim.run_until(START + 6 * H)
    assert sorted(channel.kinds()) == ["no_next_step"] * 5
    assert all(n.payload["busy_source"] == "local" for n in channel.sent)
    assert all(n.payload["suggested_slots"] for n in channel.sent)
