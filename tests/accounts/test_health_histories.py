"""Account health on real histories: thirteen months of a rep's calendar, played through the
Google and the Microsoft emulators (recurring series and their exceptions, per-instance
answers, customer-organised meetings, moves after registration), read at registration with
the DEFAULT policy (history_window P400D, paged), then changed and synced. Each of the five
calendar signals fires on the account written to show it; the healthy accounts — rep
reschedules, an executive who only comes to the monthly steering, a customer who moved
one call — show none.

The calendar is written once, through a small neutral builder (``Calendar``), with one
adapter per emulator: what differs is only how each provider spells a series, an
instance's own answer and a move.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from app.accounts import service as health_service
from app.accounts.schemas import AccountIn
from app.accounts.service import upsert as put_account
from app.runtime import Runtime
from app.sync.service import sync_calendar
from tests.accounts.test_health_google import google_emulator, google_env, grt  # noqa: F401
from tests.accounts.test_health_microsoft import cert, mrt, ms  # noqa: F401
from tests.conftest import START
from tests.emulators.google import recurrence as google_recurrence
from tests.emulators.google.fixtures import REP as GOOGLE_REP
from tests.emulators.microsoft.emulator import Recurrence

D, H, W = timedelta(days=1), timedelta(hours=1), timedelta(weeks=1)
NOW = START  # Monday 2026-11-23 08:00 UTC
MS_REP = "rep@contoso.com"
SIGNALS = (
    "meetings_postponed",
    "decision_makers_absent",
    "cadence_decay",
    "follow_ups_declined",
    "expansion_refused",
)


def at(weeks_ago: float, weekday: int = 1, hour: int = 15) -> datetime:
    """A meeting time ``weeks_ago`` before the Monday of NOW (negative: ahead)."""
    monday = NOW.replace(hour=hour) - timedelta(weeks=weeks_ago)
    return monday + weekday * D


def people(domain: str, *names: str) -> list[str]:
    return [f"{n}@{domain}" for n in names]


# --- the neutral builder and its two adapters ------------------------------------------------


class Adapter:
    def series(
        self, title: str, first: datetime, count: int, guests: dict[str, str], organizer: str | None
    ) -> str:
        raise NotImplementedError

    def instance_answer(self, sid: str, original: datetime, who: str, answer: str) -> None:
        raise NotImplementedError

    def single(
        self, title: str, start: datetime, guests: dict[str, str], organizer: str | None
    ) -> str:
        raise NotImplementedError

    def answer(self, eid: str, who: str, answer: str) -> None:
        raise NotImplementedError

    def move(self, eid: str, start: datetime) -> None:
        raise NotImplementedError

    def move_instance(self, sid: str, original: datetime, start: datetime) -> None:
        raise NotImplementedError


class GoogleCalendar(Adapter):
    SPELL = {"needs_action": "needsAction"}

    def __init__(self, emu: Any) -> None:
        self.emu = emu

    def _guests(self, guests: dict[str, str]) -> list[dict[str, str]]:
        return [{"email": e, "responseStatus": self.SPELL.get(r, r)} for e, r in guests.items()]

    def series(self, title, first, count, guests, organizer):  # type: ignore[no-untyped-def]
        return str(
            self.emu.create_event(
                GOOGLE_REP, start=first, end=first + H, summary=title,
                attendees=self._guests(guests), organizer=organizer,
                recurrence=[f"RRULE:FREQ=WEEKLY;COUNT={count}"],
            )
        )  # fmt: skip

    def instance_answer(self, sid, original, who, answer):  # type: ignore[no-untyped-def]
        iid = f"{sid}_{google_recurrence.instance_suffix(original)}"
        self.emu.set_response(GOOGLE_REP, iid, who, self.SPELL.get(answer, answer))

    def single(self, title, start, guests, organizer):  # type: ignore[no-untyped-def]
        return str(
            self.emu.create_event(
                GOOGLE_REP, start=start, end=start + H, summary=title,
                attendees=self._guests(guests), organizer=organizer,
            )
        )  # fmt: skip

    def answer(self, eid, who, answer):  # type: ignore[no-untyped-def]
        self.emu.set_response(GOOGLE_REP, eid, who, self.SPELL.get(answer, answer))

    def move(self, eid, start):  # type: ignore[no-untyped-def]
        self.emu.move_event(GOOGLE_REP, eid, start, start + H)

    def move_instance(self, sid, original, start):  # type: ignore[no-untyped-def]
        self.emu.move_instance(GOOGLE_REP, sid, original, start, start + H)


class GraphCalendar(Adapter):
    SPELL = {"needs_action": "none", "tentative": "tentativelyAccepted"}

    def __init__(self, emu: Any) -> None:
        self.emu = emu

    def _guests(self, guests: dict[str, str]) -> list[tuple[str, str, str]]:
        return [(e, "required", self.SPELL.get(r, r)) for e, r in guests.items()]

    def series(self, title, first, count, guests, organizer):  # type: ignore[no-untyped-def]
        return str(
            self.emu.add_event(
                MS_REP, subject=title, start=first, end=first + H,
                attendees=self._guests(guests), organizer=organizer,
                recurrence=Recurrence(freq="weekly", count=count),
            )
        )  # fmt: skip

    def instance_answer(self, sid, original, who, answer):  # type: ignore[no-untyped-def]
        self.emu.set_occurrence_response(MS_REP, sid, original, who, self.SPELL.get(answer, answer))

    def single(self, title, start, guests, organizer):  # type: ignore[no-untyped-def]
        return str(
            self.emu.add_event(
                MS_REP, subject=title, start=start, end=start + H,
                attendees=self._guests(guests), organizer=organizer,
            )
        )  # fmt: skip

    def answer(self, eid, who, answer):  # type: ignore[no-untyped-def]
        self.emu.set_response(MS_REP, eid, who, self.SPELL.get(answer, answer))

    def move(self, eid, start):  # type: ignore[no-untyped-def]
        self.emu.move_event(MS_REP, eid, start, start + H)

    def move_instance(self, sid, original, start):  # type: ignore[no-untyped-def]
        self.emu.modify_occurrence(MS_REP, sid, original, start=start, end=start + H)


@dataclass
class Account:
    domain: str
    contacts: list[dict[str, str]]
    expect: set[str]  # the calendar signals it must show (empty: healthy)
    later: list[Callable[[Adapter], None]] = field(default_factory=list)  # after registration


def contacts(domain: str, dm: str, champion: str, user: str) -> list[dict[str, str]]:
    return [
        {"email": f"{dm}@{domain}", "name": dm.split(".")[0].title(), "role": "decision_maker"},
        {"email": f"{champion}@{domain}", "role": "champion"},
        {"email": f"{user}@{domain}", "role": "user"},
    ]


def write_calendar(cal: Adapter) -> list[Account]:
    """Seven accounts on one rep's calendar, 56 weeks back and 8 weeks ahead."""
    accounts = []

    # 1. Healthy: a weekly review for 56 weeks (8 ahead), everyone accepted the series; the
    # rep moved three instances of their own accord (and one more after registration);
    # the executive only comes to the monthly steering meeting, which she attends.
    d = "healthy.com"
    dm, ch, us = people(d, "ada.king", "ben.ross", "cy.diaz")
    sid = cal.series("Healthy weekly review", at(56), 64, {ch: "accepted", us: "accepted"}, None)
    for weeks in (30, 4, -1):  # the rep reschedules three instances (no one asked)
        cal.move_instance(sid, at(weeks), at(weeks) + D)
    for month in range(13):
        cal.single("Healthy steering", at(4 * month + 2, weekday=3), {dm: "accepted"}, None)
    cal.single("Healthy steering", at(-2, weekday=3), {dm: "accepted"}, None)
    accounts.append(
        Account(
            d,
            contacts(d, "ada.king", "ben.ross", "cy.diaz"),
            set(),
            later=[lambda c, sid=sid: c.move_instance(sid, at(-2), at(-2) + 2 * H)],
        )
    )

    # 2. Healthy too: the customer organises a fortnightly call and moved one of them once.
    d = "steady.io"
    dm, ch, us = people(d, "dee.lam", "eli.moss", "fay.ng")
    ids = [
        cal.single("Steady sync", at(2 * k + 1, weekday=2), {dm: "accepted", us: "accepted"}, dm)
        for k in range(28)
    ]
    nxt = cal.single("Steady sync", at(-1, weekday=2), {dm: "accepted", us: "accepted"}, dm)
    accounts.append(
        Account(
            d,
            contacts(d, "dee.lam", "eli.moss", "fay.ng"),
            set(),
            later=[lambda c, e=nxt: c.move(e, at(-1, weekday=3))],
        )
    )
    assert ids

    # 3. Cadence decay: weekly for ten months, then once a month, the last 3 weeks ago,
    # nothing booked.
    d = "fading.com"
    dm, ch, us = people(d, "gus.park", "hal.ito", "ivy.cho")
    cal.series("Fading weekly", at(56), 44, {dm: "accepted", us: "accepted"}, None)
    for weeks in (9, 6, 3):
        cal.single("Fading check-in", at(weeks), {dm: "accepted", us: "accepted"}, None)
    accounts.append(Account(d, contacts(d, "gus.park", "hal.ito", "ivy.cho"), {"cadence_decay"}))

    # 4. Decision maker absent: she accepted the weekly series a year ago (all 64 instances,
    # the 8 ahead too), then declined the last five instances one by one.
    d = "absent.com"
    dm, ch, us = people(d, "jo.reed", "kai.lund", "lu.sato")
    sid = cal.series("Absent weekly", at(56, weekday=4), 64, {dm: "accepted", us: "accepted"}, None)
    for weeks in range(5, 0, -1):
        cal.instance_answer(sid, at(weeks, weekday=4), dm, "declined")
    accounts.append(
        Account(d, contacts(d, "jo.reed", "kai.lund", "lu.sato"), {"decision_makers_absent"})
    )

    # 5. Meetings postponed: a weekly series, and after registration the customer's own
    # meeting moved twice by its organiser, and one of ours moved after she declined it.
    d = "slipping.com"
    dm, ch, us = people(d, "mo.hart", "ned.vo", "oz.quinn")
    cal.series("Slipping weekly", at(56, weekday=2), 64, {dm: "accepted", us: "accepted"}, None)
    theirs = cal.single("Slipping roadmap", at(-1, weekday=4), {dm: "accepted"}, dm)
    ours = cal.single("Slipping pricing", at(-2, weekday=4), {dm: "accepted"}, None)

    def slip(c: Adapter, theirs: str = theirs, ours: str = ours, dm: str = dm) -> None:
        c.move(theirs, at(-3, weekday=4))
        c.answer(ours, dm, "declined")  # "can we move this?"
        c.move(ours, at(-4, weekday=4))

    accounts.append(
        Account(
            d,
            contacts(d, "mo.hart", "ned.vo", "oz.quinn"),
            {"meetings_postponed"},
            later=[slip, lambda c, t=theirs: c.move(t, at(-6, weekday=4))],
        )
    )

    # 6. Follow-ups declined: fortnightly meetings accepted for a year, then the last
    # invites of the quarter declined or left unanswered.
    d = "declining.com"
    dm, ch, us = people(d, "pia.wolf", "quinn.fox", "ray.lee")
    for k in range(7, 28):
        cal.single("Declining sync", at(2 * k, weekday=1), {dm: "accepted", us: "accepted"}, None)
    for k, answer in zip(
        range(6, 0, -1), ("accepted", "declined", "needs_action") * 2, strict=True
    ):
        cal.single("Declining sync", at(2 * k, weekday=1), {dm: answer, us: answer}, None)
    accounts.append(
        Account(d, contacts(d, "pia.wolf", "quinn.fox", "ray.lee"), {"follow_ups_declined"})
    )

    # 7. Expansion refused: a healthy weekly series; the expansion workshop was declined.
    d = "expanding.com"
    dm, ch, us = people(d, "sam.ortiz", "tess.gray", "uma.bell")
    cal.series("Expanding weekly", at(56, weekday=3), 64, {dm: "accepted", us: "accepted"}, None)
    cal.single("Expansion: EU rollout workshop", at(-2, weekday=2), {dm: "declined"}, None)
    accounts.append(
        Account(d, contacts(d, "sam.ortiz", "tess.gray", "uma.bell"), {"expansion_refused"})
    )
    return accounts


async def play(rt: Runtime, cal: Adapter, rep: str, provider: str) -> dict[str, dict[str, Any]]:
    """Write the calendar, put the accounts, register with the default policy, apply the
    later changes, sync, and read every account's health."""
    from app.reps import service
    from app.reps.schemas import RepIn

    assert rt.policies.account_signals.history_window == timedelta(days=400)  # the default
    accounts = write_calendar(cal)
    for a in accounts:
        body = AccountIn.model_validate(
            {"stage": "customer", "contacts": a.contacts, "owner_email": "owner@elsewhere.test"}
        )
        await rt.db.run(put_account, rt, a.domain, body)
    registered = await service.register(rt, RepIn(email=rep, provider=provider, timezone="UTC"))
    for a in accounts:
        for change in a.later:
            change(cal)
            await sync_calendar(rt, registered.id)
    out = {}
    for a in accounts:
        health = await rt.db.run(health_service.read_health, rt, a.domain)
        out[a.domain] = {"expect": a.expect, "health": health.model_dump(mode="json")}
    return out


def check(results: dict[str, dict[str, Any]]) -> None:
    for domain, r in results.items():
        found = {s["kind"] for s in r["health"]["signals"]}
        print(f"{domain:15} {r['health']['score']:3} {r['health']['level']:8} {sorted(found)}")
        for s in r["health"]["signals"]:
            print(f"    {s['kind']}: {s['explanation']}")
        if r["expect"]:
            assert r["expect"] <= found, (domain, r["health"]["signals"])
        else:
            assert found == set(), (domain, r["health"]["signals"])
            assert r["health"]["level"] == "healthy" and r["health"]["score"] == 100
    fired = set().union(*({s["kind"] for s in r["health"]["signals"]} for r in results.values()))
    assert set(SIGNALS) <= fired


async def test_a_year_of_google_calendar_with_the_default_policy(grt, google_env):  # noqa: F811
    check(await play(grt, GoogleCalendar(google_env.emulator), GOOGLE_REP, "google"))


async def test_a_year_of_outlook_calendar_with_the_default_policy(mrt, ms):  # noqa: F811
    check(await play(mrt, GraphCalendar(ms.emulator), MS_REP, "microsoft"))


@pytest.mark.parametrize("weeks", [0])
def test_the_calendar_spans_more_than_a_year(weeks: int) -> None:
    assert NOW - at(56) > timedelta(days=365) + weeks * W
