"""A labelled corpus of realistic sales calendars, generated (deterministic, seeded).

    python3 -m tests.meetings.corpus          # prints the corpus: events, labels, counts

Four reps (Paris, New York, Los Angeles, and a London rep on the internal sub-domain
``eu.seller.io``) over nine weeks from Monday 2027-03-01 — across both DST switches
(US 2027-03-14, EU 2027-03-28). Each rep's calendar is a mix of *stories*, one prospect
account each, and internal noise:

- ``series``     a weekly series (in the prospect's zone, so its UTC time shifts at DST)
                 with exceptions: an instance moved a day, one cancelled or declined by
                 everyone of the account, a room added to one
- ``discovery``  a first call and a follow-up 1–20 days later (some past the 14-day
                 horizon), answered any way (declined by all: no follow-up), sometimes
                 moved or cancelled after registration; rooms on some
- ``free_mail``  a gmail prospect: another gmail person's call in between is *not* the
                 follow-up (on free mail the prospect is the person)
- ``dst``        a Friday call before a DST switch and the "same time two weeks later"
                 call, an hour inside the horizon or half an hour past it
- ``team``       two people of one company: the follow-up with only the second one (the
                 first declined) counts; a call the rep declined is no meeting but is the
                 follow-up; an all-day workshop is neither; a call that starts before the
                 first ends is not its follow-up, one that starts the moment it ends is;
                 the account's own meeting room is no person
- ``organised``  the prospect organises (Tokyo or Berlin time), upper-case addresses
- noise          internal 1:1s (incl. the sub-domain), rooms only (flagged, or a Google
                 room calendar address), out-of-office, focus time, all-day holidays

Labels come from the stories, not from the code under test: each event says whether it is
a prospect meeting (and of which account) and for which accounts it may be a follow-up, as
the contract words it ("Prospect meetings and their state"); the expected follow-up of a
meeting is then the earliest later event of the same rep that starts within the horizon
(14 days after the meeting ends) and may be a follow-up for its account.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from connectors.base import Attendee, CalendarEvent

T0 = datetime(2027, 3, 1, 7, 0, tzinfo=UTC)  # registration: Monday morning
HORIZON = timedelta(days=14)
SEED = 20270301
REPS = {
    "anne@seller.io": "Europe/Paris",
    "bob@seller.io": "America/New_York",
    "chloe@seller.io": "America/Los_Angeles",
    "dev@eu.seller.io": "Europe/London",
}
COLLEAGUES = ("sam@seller.io", "lea@eu.seller.io", "max@seller.io")
WORDS = (
    "acme globex initech umbrella hooli stark wayne wonka tyrell cyberdyne soylent vandelay "
    "oscorp aperture duff monarch nakatomi prestige sirius virtucon gringotts pied buynlarge "
    "dunder contoso fabrikam northwind tailspin litware adatum"
).split()
FIRST = "dana lee kim omar ines yuki paul sara ravi mia noah lena theo ada".split()
LAST = "smith wong park haddad costa sato martin ruiz iyer rossi berg vidal".split()


@dataclass
class Item:
    """One event of the corpus and its labels."""

    rep: str
    event: CalendarEvent
    meeting_of: str | None = None  # the account when this event is a prospect meeting
    follow_up_for: frozenset[str] = frozenset()  # accounts it may be a follow-up of
    move_to: datetime | None = None  # moved after registration (the sandbox's move)
    cancel: bool = False  # cancelled after registration
    story: str = ""

    @property
    def start(self) -> datetime:
        return self.move_to or self.event.start

    @property
    def end(self) -> datetime:
        return self.start + (self.event.end - self.event.start)


@dataclass
class Corpus:
    items: list[Item] = field(default_factory=list)

    def meetings(self) -> dict[tuple[str, str], str]:
        """(rep, event id) → account of every labelled prospect meeting."""
        return {(i.rep, i.event.event_id): i.meeting_of for i in self.items if i.meeting_of}

    def follow_ups(self) -> dict[tuple[str, str], str | None]:
        """(rep, event id) → the expected follow-up's event id (None: none)."""
        out: dict[tuple[str, str], str | None] = {}
        for m in self.items:
            if not m.meeting_of:
                continue
            later = [
                c
                for c in self.items
                if c.rep == m.rep
                and c.event.event_id != m.event.event_id
                and m.meeting_of in c.follow_up_for
                and m.end <= c.start <= m.end + HORIZON
            ]
            best = min(later, key=lambda c: (c.start, c.event.event_id), default=None)
            out[(m.rep, m.event.event_id)] = best.event.event_id if best else None
        return out


class _Maker:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.n = 0
        self.seq = 0

    def account(self) -> tuple[str, str]:
        self.n += 1
        word = WORDS[self.n % len(WORDS)]
        return f"{word}{self.n}.com", word.title()

    def person(self, domain: str) -> str:
        return f"{self.rng.choice(FIRST)}.{self.rng.choice(LAST)}{self.rng.randint(1, 99)}@{domain}"

    def eid(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}{self.seq:04d}"


def at(day: date, hh: int, mm: int, zone: str) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def ev(
    eid: str,
    rep: str,
    start: datetime,
    guests: dict[str, str],
    *,
    title: str,
    minutes: int = 45,
    organizer: str | None = None,
    rep_response: str = "accepted",
    rooms: tuple[str, ...] = (),
    flagged_rooms: bool = True,
    **kw: object,
) -> CalendarEvent:
    """An event as the rep's calendar shows it: the organiser listed among the attendees."""
    org = organizer or rep
    people = [Attendee(email=org, response="accepted", is_organizer=True)]
    if org != rep:
        people.append(Attendee(email=rep, response=rep_response))  # type: ignore[arg-type]
    people += [
        Attendee(email=e, response=r)  # type: ignore[arg-type]
        for e, r in guests.items()
        if e.lower() != org.lower()
    ]
    people += [Attendee(email=r, response="accepted", is_resource=flagged_rooms) for r in rooms]
    return CalendarEvent(
        event_id=eid,
        title=title,
        start=start,
        end=start + timedelta(minutes=minutes),
        organizer_email=org,
        rep_response=rep_response if org != rep else "accepted",  # type: ignore[arg-type]
        attendees=tuple(people),
        created=T0 - timedelta(days=3),
        **kw,  # type: ignore[arg-type]
    )


def workday(rng: random.Random, lo: int = 0, hi: int = 40) -> date:
    while True:
        d = (T0 + timedelta(days=rng.randint(lo, hi))).date()
        if d.weekday() < 5:
            return d


def _meeting(rep: str, e: CalendarEvent, account: str, story: str, **kw: object) -> Item:
    return Item(rep, e, account, frozenset({account}), story=story, **kw)  # type: ignore[arg-type]


# --- stories -------------------------------------------------------------------------------


def series(mk: _Maker, rep: str, zone: str) -> list[Item]:
    rng = mk.rng
    domain, name = mk.account()
    guests = {mk.person(domain): "accepted" for _ in range(rng.randint(1, 3))}
    prospect_zone = rng.choice(("America/Chicago", "Europe/Berlin", zone))
    first = workday(rng, 0, 10)
    count = rng.randint(4, 6)
    sid = mk.eid("ser")
    moved, odd = rng.sample(range(count), 2)
    oddity = rng.choice(("cancelled", "declined", "room", "none"))
    out = []
    for k in range(count):
        orig = at(first + timedelta(weeks=k), 10, 0, prospect_zone)
        start = orig + timedelta(days=1) if k == moved else orig
        e = ev(
            f"{sid}_{k}", rep, start, dict(guests), title=f"{name} weekly sync",
            recurring_event_id=sid, original_start=orig if k == moved else None,
            time_zone=prospect_zone,
        )  # fmt: skip
        if k == odd and oddity == "cancelled":
            out.append(Item(rep, replace(e, status="cancelled"), story="series/cancelled"))
        elif k == odd and oddity == "declined":
            no = tuple(
                replace(a, response="declined") if a.email.endswith(domain) else a
                for a in e.attendees
            )
            out.append(Item(rep, replace(e, attendees=no), story="series/declined"))
        elif k == odd and oddity == "room":
            room = Attendee(email="room-4b@seller.io", response="accepted", is_resource=True)
            out.append(_meeting(rep, replace(e, attendees=(*e.attendees, room)), domain, "series"))
        else:
            out.append(_meeting(rep, e, domain, "series"))
    return out


def discovery(mk: _Maker, rep: str, zone: str) -> list[Item]:
    rng = mk.rng
    domain, name = mk.account()
    who = mk.person(domain)
    d = workday(rng, 0, 30)
    start = at(d, rng.choice((9, 11, 14, 16)), rng.choice((0, 30)), zone)
    rooms = ("c1-zurich-3@resource.calendar.google.com",) if rng.random() < 0.3 else ()
    first = ev(
        mk.eid("dis"), rep, start, {who: "accepted"}, title=f"{name} discovery",
        rooms=rooms, flagged_rooms=rng.random() < 0.5,
    )  # fmt: skip
    out = [_meeting(rep, first, domain, "discovery")]
    gap = timedelta(days=rng.randint(1, 20), hours=rng.choice((-2, 0, 3)))
    answer = rng.choice(("accepted", "needs_action", "tentative", "declined"))
    fu = ev(mk.eid("fu"), rep, start + gap, {who: answer}, title=f"{name} next steps", minutes=30)
    move_to = start + gap + timedelta(days=rng.choice((2, 5, 9))) if rng.random() < 0.3 else None
    if answer != "declined" and move_to is None and rng.random() < 0.25:
        # Booked, then cancelled after registration: no follow-up any more.
        out.append(Item(rep, fu, cancel=True, story="discovery/cancelled"))
    elif answer == "declined":
        out.append(Item(rep, fu, story="discovery/declined", move_to=move_to))
    else:
        out.append(_meeting(rep, fu, domain, "discovery/follow-up", move_to=move_to))
    return out


def free_mail(mk: _Maker, rep: str, zone: str) -> list[Item]:
    rng = mk.rng
    mk.n += 1
    jane = f"{rng.choice(FIRST)}.{rng.choice(LAST)}{mk.n}@gmail.com"
    john = f"{rng.choice(FIRST)}{mk.n}.{rng.choice(LAST)}@gmail.com"
    d = workday(rng, 0, 30)
    s = at(d, 12, 0, zone)
    return [
        _meeting(rep, ev(mk.eid("fm"), rep, s, {jane: "accepted"}, title="Intro"), jane, "free"),
        _meeting(
            rep,
            ev(mk.eid("fm"), rep, s + timedelta(days=2), {john: "accepted"}, title="Intro"),
            john,
            "free/other-person",
        ),
        _meeting(
            rep,
            ev(mk.eid("fm"), rep, s + timedelta(days=6), {jane: "needs_action"}, title="Demo"),
            jane,
            "free/follow-up",
        ),
    ]


def dst(mk: _Maker, rep: str, zone: str) -> list[Item]:
    """A Friday call before the switch, the same local time two weeks later (an hour
    earlier in UTC: inside the horizon), or 30 minutes past the horizon's end."""
    domain, name = mk.account()
    who = mk.person(domain)
    switch = date(2027, 3, 12) if zone.startswith("America") else date(2027, 3, 26)
    start = at(switch, 10, 0, zone)
    out = [_meeting(rep, ev(mk.eid("dst"), rep, start, {who: "accepted"}, title=f"{name} call",
                            minutes=60, time_zone=zone), domain, "dst")]  # fmt: skip
    later = switch + timedelta(weeks=2)
    inside = mk.rng.random() < 0.5
    hh, mm = (11, 0) if inside else (12, 30)  # 11:00 new time = end + 14d − 1h in UTC
    fu = ev(mk.eid("dst"), rep, at(later, hh, mm, zone), {who: "accepted"},
            title=f"{name} follow-up", minutes=30, time_zone=zone)  # fmt: skip
    out.append(_meeting(rep, fu, domain, "dst/inside" if inside else "dst/outside"))
    return out


def team(mk: _Maker, rep: str, zone: str) -> list[Item]:
    rng = mk.rng
    domain, name = mk.account()
    a, b = mk.person(domain), mk.person(domain)
    d = workday(rng, 0, 25)
    s = at(d, 15, 0, zone)
    out = [
        _meeting(
            rep,
            ev(mk.eid("tm"), rep, s, {a: "accepted", b: "declined"}, title="Kickoff"),
            domain,
            "team",
        ),  # fmt: skip
        # Back to back: starts the moment the kickoff ends — a later event, its follow-up.
        _meeting(
            rep,
            ev(
                mk.eid("tm"),
                rep,
                s + timedelta(minutes=45),
                {a: "accepted"},
                title="Debrief",
                minutes=15,
            ),
            domain,
            "team/back-to-back",
        ),  # fmt: skip
        # Only the account's meeting room (a resource at its domain) and a colleague: no one.
        Item(
            rep,
            ev(
                mk.eid("tm"),
                rep,
                s + timedelta(days=2),
                {COLLEAGUES[0]: "accepted"},
                title="Room check",
                rooms=(f"boardroom@{domain}",),
            ),
            story="team/their-room",
        ),  # fmt: skip
        # Starts before the kickoff ends: not its follow-up (but a meeting of its own).
        _meeting(
            rep,
            ev(
                mk.eid("tm"),
                rep,
                s + timedelta(minutes=30),
                {b: "accepted"},
                title="Tech deep-dive",
            ),
            domain,
            "team/overlap",
        ),  # fmt: skip
        # An all-day workshop: neither a meeting nor a follow-up.
        Item(
            rep,
            ev(
                mk.eid("tm"),
                rep,
                datetime.combine(d + timedelta(days=1), time(0), tzinfo=UTC),
                {a: "accepted"},
                title="On-site workshop",
                minutes=24 * 60,
                all_day=True,
            ),
            story="team/all-day",
        ),  # fmt: skip
        # The rep declined it: no meeting, but someone of the account still comes.
        Item(
            rep,
            ev(
                mk.eid("tm"),
                rep,
                s + timedelta(days=3),
                {b: "accepted"},
                title="Security review",
                organizer=b,
                rep_response="declined",
            ),
            None,
            frozenset({domain}),
            story="team/rep-declined",
        ),  # fmt: skip
        _meeting(
            rep,
            ev(
                mk.eid("tm"),
                rep,
                s + timedelta(days=8),
                {a: "declined", b: "needs_action"},
                title="Pricing",
            ),
            domain,
            "team/second-person",
        ),  # fmt: skip
    ]
    return out


def organised(mk: _Maker, rep: str, zone: str) -> list[Item]:
    rng = mk.rng
    domain, name = mk.account()
    boss = mk.person(domain).upper()  # some directories write addresses upper-case
    their_zone = rng.choice(("Asia/Tokyo", "Europe/Berlin"))
    d = workday(rng, 0, 30)
    s = at(d, 9, 0, their_zone)
    first = ev(mk.eid("org"), rep, s, {boss: "accepted"}, title=f"{name} <> Seller",
               organizer=boss, rep_response="needs_action", time_zone=their_zone)  # fmt: skip
    second = ev(mk.eid("org"), rep, s + timedelta(days=rng.randint(3, 12)),
                {boss.lower(): "accepted"}, title=f"{name} follow-up", time_zone=their_zone)  # fmt: skip
    return [_meeting(rep, first, domain, "organised"), _meeting(rep, second, domain, "organised")]


def noise(mk: _Maker, rep: str, zone: str) -> list[Item]:
    rng = mk.rng
    d = workday(rng, 0, 40)
    s = at(d, 13, 0, zone)
    c = rng.choice(COLLEAGUES)
    return [
        Item(rep, ev(mk.eid("in"), rep, s, {c: "accepted"}, title="1:1"), story="noise"),
        Item(
            rep,
            ev(
                mk.eid("in"),
                rep,
                s + timedelta(hours=2),
                {c: "accepted"},
                title="Planning",
                rooms=("c2-paris-1@resource.calendar.google.com",),
                flagged_rooms=False,
            ),
            story="noise/room",
        ),  # fmt: skip
        Item(
            rep,
            ev(
                mk.eid("in"),
                rep,
                s + timedelta(days=1),
                {},
                title="Out of office",
                event_type="out_of_office",
            ),
            story="noise/ooo",
        ),  # fmt: skip
        Item(
            rep,
            ev(
                mk.eid("in"), rep, s + timedelta(days=2), {}, title="Focus", event_type="focus_time"
            ),
            story="noise/focus",
        ),  # fmt: skip
    ]


STORIES = (series, discovery, discovery, free_mail, dst, team, organised)


def generate(seed: int = SEED, stories_per_rep: int = 21) -> Corpus:
    mk = _Maker(random.Random(seed))
    corpus = Corpus()
    for rep, zone in REPS.items():
        for k in range(stories_per_rep):
            corpus.items += STORIES[k % len(STORIES)](mk, rep, zone)
        corpus.items += noise(mk, rep, zone) + noise(mk, rep, zone)
    return corpus


if __name__ == "__main__":
    c = generate()
    fus = c.follow_ups()
    for i in c.items:
        key = (i.rep, i.event.event_id)
        print(
            f"{i.rep:18} {i.event.event_id:10} {i.start:%Y-%m-%d %H:%M}Z {i.story:22}"
            f" meeting={i.meeting_of or '-':28} follow_up={fus.get(key, '-')}"
        )
    print(f"{len(c.items)} events, {len(c.meetings())} prospect meetings, "
          f"{sum(1 for v in fus.values() if v)} with a follow-up")  # fmt: skip
