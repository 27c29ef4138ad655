"""`nextstep demo`: a scripted sales week on the sandbox provider, in a few seconds.

No credentials, no network: an embedded SQLite file in a temporary directory, the
in-process sandbox calendar provider, and the real engine driven on a manual clock that
jumps from one due time to the next (app/simulation.py). Every nudge is printed as the
console channel receives it, through the same outbox as the webhook, e-mail and Slack.
"""

from __future__ import annotations

import asyncio
import tempfile
import textwrap
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from app import providers as registry
from app.accounts.schemas import AccountIn
from app.accounts.service import upsert
from app.actions import service as actions
from app.clock import ManualClock
from app.config import load_settings
from app.delivery.channels.base import DeliveryResult, Outbound
from app.main import build_runtime, close_runtime
from app.meetings.service import list_meetings
from app.meetings.service import read as read_meeting
from app.nudges.service import list_nudges
from app.reps.schemas import RepIn
from app.reps.service import list_all, register
from app.runtime import Runtime
from app.simulation import Simulation
from connectors.base import Attendee, CalendarEvent, Response
from policies.vocabulary import NudgeKind

WEEK_START = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # Monday 08:00 in Paris
DEMO_POLICY = Path(__file__).resolve().parents[1] / "policies" / "demo.yaml"
PARIS, NEW_YORK = "Europe/Paris", "America/New_York"
DOMAIN = "northwind-sales.eu"
CAMILLE = f"camille.martin@{DOMAIN}"
MIKE = f"mike.ross@{DOMAIN}"
MANAGER = f"sophie.durand@{DOMAIN}"
REP_ZONES = {CAMILLE: PARIS, MIKE: NEW_YORK}
NAMES = {CAMILLE: "Camille Martin", MIKE: "Mike Ross", MANAGER: "Sophie Durand"}
RULE = "─" * 78


def _at(day: int, hour: int, minute: int = 0, zone: str = PARIS) -> datetime:
    """Day ``day`` of the demo week (0 = Monday) at a local time."""
    local = WEEK_START.astimezone(ZoneInfo(zone)).replace(hour=hour, minute=minute, second=0)
    return (local + timedelta(days=day)).astimezone(UTC)


def policy_header(rt: Runtime) -> str:
    """What the policy in force says, read from it (file name, windows, clock, slots)."""
    p = rt.policies.default
    clock = (
        "business clock: windows count working days and hours, nothing reaches a rep "
        "outside working time"
        if p.business
        else "calendar clock: windows count wall-clock time"
    )
    slots = [f"{_human(p.follow_up_duration)} slots"]
    if p.lunch is not None:
        slots.append(f"never over lunch {p.lunch[0]:%H:%M}–{p.lunch[1]:%H:%M}")
    if p.slot_buffer:
        slots.append(f"{_human(p.slot_buffer)} free around busy time")
    slots.append("never on either side's public holidays")
    stages = "every stage" if p.stages is None else "stages " + ", ".join(sorted(p.stages))
    return (
        f"Policy {p.name!r} ({Path(rt.policies.source).name}): invite within "
        f"{_human(p.invite_within)}, accepted within {_human(p.accept_within)}, horizon "
        f"{_human(p.horizon)}, escalate after {_human(p.escalate_after)}; {clock}.\n"
        f"Slots: {', '.join(slots)}. Nudges for {stages}."
    )


def _human(value: timedelta) -> str:
    days, rest = value.days, value.seconds
    parts = [f"{days} day{'s' if days != 1 else ''}"] if days else []
    hours, minutes = divmod(rest // 60, 60)
    if hours:
        parts.append(f"{hours} h")
    if minutes:
        parts.append(f"{minutes} min")
    return " ".join(parts) or f"{rest} s"


def _local(dt: datetime, zone: str) -> str:
    return dt.astimezone(ZoneInfo(zone)).strftime("%a %d %b %H:%M %Z")


class ConsoleChannel:
    """Prints each nudge readably; a real channel through the real outbox."""

    name = "console"

    def __init__(self, clock: ManualClock, out: Callable[[str], None]) -> None:
        self.clock, self.out = clock, out
        self.kinds: list[str] = []

    async def send(self, msg: Outbound) -> DeliveryResult:
        p = msg.payload
        self.kinds.append(p["kind"])
        if p["kind"] == NudgeKind.ACCOUNT_AT_RISK:
            self.out(self._account(p))
            return DeliveryResult(ok=True, retryable=False)
        rep = p["rep"]["email"]
        to = p.get("recipient") or rep
        zone = REP_ZONES.get(rep, PARIS)
        m = p["meeting"]
        start, end = datetime.fromisoformat(m["start"]), datetime.fromisoformat(m["end"])
        lines = [
            RULE,
            f"[{self.clock.now().strftime('%a %d %b %H:%M UTC')}]  {p['kind'].upper().replace('_', ' ')}"
            f"  →  {NAMES.get(to, to)} <{to}>",
            f"Meeting : {m['title']}  ·  {m['account_domain']}  ·  {', '.join(m['external_attendees'])}",
            f"          {_local(start, zone)} – {end.astimezone(ZoneInfo(zone)).strftime('%H:%M')}",
        ]
        if p["suggested_slots"]:
            lines.append("Slots   : (rep's time · prospect's time)")
            prospect = p["prospect_timezone"]
            for i, s in enumerate(p["suggested_slots"], 1):
                st = datetime.fromisoformat(s["start"])
                lines.append(f"          {i}. {_local(st, zone)}  ·  {_local(st, prospect)}")
        else:
            lines.append("Slots   : none free inside both sides' working hours")
        d = p["draft_invite"]
        lines += [f"Draft   : {d['subject']}  (to {', '.join(d['attendees'])})"]
        lines += ["          " + ln for ln in _wrap(d["body"])]
        lines += ["Message :"] + ["          " + ln for ln in _wrap(p["message"])]
        if p.get("actions"):
            lines.append(
                "Actions : (one click each: the page shows what happens, its button does it)"
            )
            for a in p["actions"]:
                lines.append(f"          [{a['kind']}] {a['label']}")
                lines.append(f"              {_short(a['url'])}")
        self.out("\n".join(lines))
        return DeliveryResult(ok=True, retryable=False)

    def _account(self, p: dict[str, Any]) -> str:
        """An account_at_risk nudge: the health, its signals, the candid draft."""
        to, a = p["recipient"], p["account"]
        lines = [
            RULE,
            f"[{self.clock.now().strftime('%a %d %b %H:%M UTC')}]  ACCOUNT AT RISK"
            f"  →  {NAMES.get(to, to)} <{to}>",
            f"Account : {a['name'] or a['domain']}  ·  {a['domain']}  ·  score {a['score']}/100"
            f"  ·  {a['level']} (was {p['previous_level']})",
        ]
        for s in a["signals"]:
            lines.append(
                f"Signal  : {s['kind']} ({s['severity']}, −{s['points']:g})  "
                f"evidence: {', '.join(s['evidence'])}"
            )
        d = p["draft_invite"]
        lines += [f"Draft   : {d['subject']}  (to {', '.join(d['attendees'])})"]
        lines += ["          " + ln for ln in _wrap(d["body"])]
        lines += ["Message :"] + ["          " + ln for ln in _wrap(p["message"])]
        return "\n".join(lines)

    async def aclose(self) -> None:
        return None


def _short(url: str) -> str:
    """An action URL with its (long, opaque) token cut in the middle, for the console."""
    head, _, token = url.rpartition("/")
    return f"{head}/{token[:18]}…{token[-6:]}" if len(token) > 30 else url


def _wrap(text: str) -> list[str]:
    out: list[str] = []
    for para in text.strip().split("\n"):
        out += textwrap.wrap(para, 66) or [""]
    return out


def _event(
    eid: str, title: str, start: datetime, minutes: int, organizer: str, guests: dict[str, str]
) -> CalendarEvent:
    return CalendarEvent(
        event_id=eid,
        title=title,
        start=start,
        end=start + timedelta(minutes=minutes),
        organizer_email=organizer,
        attendees=(
            Attendee(email=organizer, response="accepted", is_organizer=True),
            *(Attendee(email=e, response=r) for e, r in guests.items()),  # type: ignore[arg-type]
        ),
    )


Step = Callable[[Runtime, registry.Sandbox], Awaitable[None] | None]


def script() -> list[tuple[datetime, str, Step]]:
    """The week: what happens on the reps' calendars, and when."""

    def put(rep: str, ev: CalendarEvent) -> Step:
        def step(rt: Runtime, sb: registry.Sandbox) -> None:
            sb.put_event(rep, ev)

        return step

    def answer(rep: str, eid: str, who: str, response: str) -> Step:
        return lambda rt, sb: sb.respond(rep, eid, who, response)  # type: ignore[arg-type]

    clicked: dict[str, str] = {}

    async def tap(rt: Runtime, sb: registry.Sandbox, kind: NudgeKind, title: str) -> None:
        """Camille taps her nudge's first send_invite button; prints the invitation."""
        nudge = await rt.db.run(_latest_nudge, CAMILLE, kind, title)
        if nudge is None or not nudge.get("actions"):
            # Another policy file (NEXTSTEP_POLICY_FILE) may not have nudged by now.
            rt_out(rt)(f"(no {kind} nudge with actions for “{title}” yet under this policy)")
            return
        action = nudge["actions"][0]
        page = await actions.act(rt, action["url"].rpartition("/")[2], None)
        meeting = await rt.db.run(read_meeting, nudge["meeting"]["id"])
        assert meeting.follow_up is not None, page.context
        fu = next(e for e in sb.events(CAMILLE) if e.event_id == meeting.follow_up.event_id)
        out = [
            RULE,
            f"Camille taps “{action['label']}” → {page.status} {page.context.get('heading')}",
            f"Invite  : {fu.title}",
            f"          {_local(fu.start, PARIS)}  ·  {_local(fu.start, NEW_YORK)}",
            f"          to {', '.join(a.email for a in fu.attendees if a.email != CAMILLE)}",
            f"          video: {fu.video_link}",
        ]
        out += ["          " + ln for ln in _wrap(fu.description)]
        rt_out(rt)("\n".join(out))
        clicked[title] = fu.event_id

    def send_from(kind: NudgeKind, title: str) -> Step:
        return lambda rt, sb: tap(rt, sb, kind, title)

    def decline_follow_up(title: str, who: str) -> Step:
        def step(rt: Runtime, sb: registry.Sandbox) -> None:
            if title in clicked:  # only once the invitation went out
                sb.respond(CAMILLE, clicked[title], who, "declined")

        return step

    steps = [
        (
            _at(0, 8),
            "Camille books a discovery call with Acme (New York) for Monday 15:00 Paris",
            put(
                CAMILLE,
                _event(
                    "acme-1",
                    "Acme — discovery call",
                    _at(0, 15),
                    60,
                    CAMILLE,
                    {"dana.smith@acme.com": "accepted"},
                ),
            ),
        ),
        (
            _at(0, 18, 30),
            "Camille opens the nudge's e-mail and taps the first slot (the page showed it first)",
            send_from(NudgeKind.NO_NEXT_STEP, "Acme — discovery call"),
        ),
        (
            _at(1, 10),
            "Dana (Acme) declines the follow-up",
            decline_follow_up("Acme — discovery call", "dana.smith@acme.com"),
        ),
        (
            _at(1, 10, 30),
            "Camille taps a slot of the new nudge: the same event moves, Dana is told",
            send_from(NudgeKind.FOLLOW_UP_DECLINED, "Acme — discovery call"),
        ),
        (
            _at(0, 9, zone=NEW_YORK),
            "Mike demos to Globex (Chicago)",
            put(
                MIKE,
                _event(
                    "globex-1",
                    "Globex — product demo",
                    _at(0, 10, zone=NEW_YORK),
                    45,
                    MIKE,
                    {"ann.lee@globex.com": "accepted", "raj.patel@globex.com": "accepted"},
                ),
            ),
        ),
        (
            _at(0, 11, zone=NEW_YORK),
            "Mike sends the follow-up right after the demo (nobody answers)",
            put(
                MIKE,
                _event(
                    "globex-2",
                    "Globex — proposal review",
                    _at(4, 11, zone=NEW_YORK),
                    30,
                    MIKE,
                    {"ann.lee@globex.com": "needs_action", "raj.patel@globex.com": "needs_action"},
                ),
            ),
        ),
        (
            _at(1, 9),
            "Camille books a scoping call with Initech (Los Angeles: no common office hours with Paris)",
            put(
                CAMILLE,
                _event(
                    "initech-1",
                    "Initech — scoping",
                    _at(1, 16),
                    60,
                    CAMILLE,
                    {"bill.lumbergh@initech.com": "accepted"},
                ),
            ),
        ),
        (
            _at(1, 17, 30),
            "…the pricing-call invite goes out",
            put(
                CAMILLE,
                _event(
                    "initech-2",
                    "Initech — pricing",
                    _at(3, 16),
                    30,
                    CAMILLE,
                    {"bill.lumbergh@initech.com": "needs_action"},
                ),
            ),
        ),
        (
            _at(2, 10),
            "Initech declines the pricing call",
            answer(CAMILLE, "initech-2", "bill.lumbergh@initech.com", "declined"),
        ),
        (
            _at(1, 13, zone=NEW_YORK),
            "Mike meets a freelancer on Gmail and books the next call at once",
            put(
                MIKE,
                _event(
                    "jane-1",
                    "Jane Doe — intro",
                    _at(1, 13, 30, zone=NEW_YORK),
                    30,
                    MIKE,
                    {"jane.doe@gmail.com": "accepted"},
                ),
            ),
        ),
        (
            _at(1, 14, 30, zone=NEW_YORK),
            "…invite sent",
            put(
                MIKE,
                _event(
                    "jane-2",
                    "Jane Doe — next step",
                    _at(2, 13, zone=NEW_YORK),
                    15,
                    MIKE,
                    {"jane.doe@gmail.com": "needs_action"},
                ),
            ),
        ),
        (
            _at(1, 16, zone=NEW_YORK),
            "Jane accepts: that next step is secured",
            answer(MIKE, "jane-2", "jane.doe@gmail.com", "accepted"),
        ),
        (
            _at(4, 9),
            "Friday: Camille books a late call with Hooli (New York) for 16:30 Paris",
            put(
                CAMILLE,
                _event(
                    "hooli-1",
                    "Hooli — first call",
                    _at(4, 16, 30),
                    60,
                    CAMILLE,
                    {"gavin.belson@hooli.com": "accepted"},
                ),
            ),
        ),
        (
            _at(2, 9, zone=NEW_YORK),
            "Mike demos to Soylent (New York) and books the follow-up for next Tuesday",
            put(
                MIKE,
                _event(
                    "soylent-1",
                    "Soylent — demo",
                    _at(2, 10, zone=NEW_YORK),
                    45,
                    MIKE,
                    {"sol.green@soylent.com": "accepted"},
                ),
            ),
        ),
        (
            _at(2, 11, zone=NEW_YORK),
            "…the Soylent follow-up invite goes out",
            put(
                MIKE,
                _event(
                    "soylent-2",
                    "Soylent — next step",
                    _at(8, 10, zone=NEW_YORK),
                    30,
                    MIKE,
                    {"sol.green@soylent.com": "needs_action"},
                ),
            ),
        ),
        (
            _at(5, 10, zone=NEW_YORK),
            "Saturday: Soylent declines the follow-up (Mike hears of it Monday 09:00)",
            answer(MIKE, "soylent-2", "sol.green@soylent.com", "declined"),
        ),
        *customer_script(),
    ]
    return sorted(steps, key=lambda step: step[0])


# --- a customer going quiet: Umbrella Health, owned by Mike --------------------------------

UMBRELLA = "umbrella-health.com"
OLIVIA, MARCUS, TOM = (
    f"olivia.chen@{UMBRELLA}",
    f"marcus.reed@{UMBRELLA}",
    f"tom.baker@{UMBRELLA}",
)
UMBRELLA_CONTACTS = [
    {"email": OLIVIA, "name": "Olivia Chen", "title": "VP Operations", "role": "decision_maker"},
    {"email": MARCUS, "name": "Marcus Reed", "title": "Head of IT", "role": "champion"},
    {"email": TOM, "name": "Tom Baker", "role": "user"},
]


def customer_history() -> list[CalendarEvent]:
    """Twelve weeks of Monday rollout reviews, as Mike's calendar shows them; the decision
    maker and the champion stopped coming two weeks ago. Two more reviews are booked."""
    events = []
    for week in range(-12, 3):
        start = _at(7 * week, 10, zone=NEW_YORK)
        gone = -2 <= week <= 0
        answer = "declined" if gone else "accepted" if week < 0 else "needs_action"
        ev = _event(
            f"umbrella-review{week + 12}",
            "Umbrella — weekly rollout review",
            start,
            45,
            MIKE,
            {OLIVIA: "accepted" if week == 0 else answer, MARCUS: answer, TOM: "accepted"},
        )
        events.append(replace(ev, created=min(start, WEEK_START) - timedelta(days=3)))
    expansion = _event(
        "umbrella-eu",
        "Umbrella — expansion to the EU clinics",
        _at(3, 11, zone=NEW_YORK),
        60,
        MIKE,
        {OLIVIA: "tentative"},
    )
    events.append(replace(expansion, created=WEEK_START - timedelta(days=10)))
    return events


def customer_script() -> list[tuple[datetime, str, Step]]:
    def move(days: int, answer: Response) -> Step:
        def step(rt: Runtime, sb: registry.Sandbox) -> None:
            # She answers the invite with "can we move this?" and Mike moves it for her: a
            # postponement by the customer's side, though Mike organises the call.
            sb.respond(MIKE, "umbrella-eu", OLIVIA, answer)
            sb.move_event(MIKE, "umbrella-eu", _at(3 + days, 11, zone=NEW_YORK))

        return step

    return [
        (
            _at(0, 8, zone=NEW_YORK),
            "Umbrella Health: Olivia Chen (decision maker) declines today's "
            "rollout review — the third in a row without her or the champion",
            lambda rt, sb: sb.respond(MIKE, "umbrella-review12", OLIVIA, "declined"),
        ),
        (
            _at(1, 9, zone=NEW_YORK),
            "Olivia asks Mike to push the EU expansion call back a week",
            move(7, "declined"),
        ),
        (_at(2, 9, zone=NEW_YORK), "…and back another week", move(14, "tentative")),
        (
            _at(3, 9, zone=NEW_YORK),
            "Olivia declines the EU expansion call",
            lambda rt, sb: sb.respond(MIKE, "umbrella-eu", OLIVIA, "declined"),
        ),
    ]


async def _run(out: Callable[[str], None], workdir: Path) -> dict[str, Any]:
    clock = ManualClock(WEEK_START)
    console = ConsoleChannel(clock, out)
    settings = load_settings(
        database_url=f"sqlite:///{workdir}/demo.db",
        sandbox=True,
        internal_domains=DOMAIN,
        api_keys="demo",
    )
    if settings.policy_file is None:
        settings = settings.model_copy(update={"policy_file": DEMO_POLICY})
    rt = build_runtime(settings, clock=clock, channels={"console": console})
    _OUTS[id(rt)] = out
    sim = Simulation(rt)
    sandbox = registry.sandbox(rt.providers)
    try:
        for domain, name, tz in (
            ("acme.com", "Acme Corp", NEW_YORK),
            ("globex.com", "Globex", "America/Chicago"),
            ("initech.com", "Initech", "America/Los_Angeles"),
            ("jane.doe@gmail.com", "Jane Doe", NEW_YORK),
            ("hooli.com", "Hooli", NEW_YORK),
            ("soylent.com", "Soylent", NEW_YORK),
        ):
            await rt.db.run(upsert, rt, domain, AccountIn(name=name, timezone=tz))
        await rt.db.run(
            upsert,
            rt,
            UMBRELLA,
            AccountIn.model_validate(
                {
                    "name": "Umbrella Health",
                    "timezone": NEW_YORK,
                    "stage": "customer",
                    "owner_email": MIKE,
                    "renewal_date": "2027-06-30",
                    "contacts": UMBRELLA_CONTACTS,
                }
            ),
        )
        for ev in customer_history():
            sandbox.put_event(MIKE, ev)
        await register(
            rt,
            RepIn(
                email=CAMILLE,
                provider="sandbox",
                timezone=PARIS,
                locale="fr",
                manager_email=MANAGER,
            ),
        )
        await register(
            rt,
            RepIn(
                email=MIKE,
                provider="sandbox",
                timezone=NEW_YORK,
                locale="en",
                manager_email=MANAGER,
            ),
        )
        out(
            f"NextStep demo — a sales week for {NAMES[CAMILLE]} (Paris, fr) and "
            f"{NAMES[MIKE]} (New York, en); manager {NAMES[MANAGER]}."
        )
        out(policy_header(rt) + "\n")
        for when, what, step in script():
            await sim.run_until(when)
            out(f"· {_local(when, PARIS)} / {_local(when, NEW_YORK)} — {what}")
            result = step(rt, sandbox)
            if asyncio.iscoroutine(result):
                await result
        await sim.run_until(_at(7, 18))  # the next Monday evening in Paris
        return await rt.db.run(_summary, rt)
    finally:
        await close_runtime(rt)


_OUTS: dict[int, Callable[[str], None]] = {}


def rt_out(rt: Runtime) -> Callable[[str], None]:
    """Where the demo prints for this runtime (the console channel's printer)."""
    return _OUTS.get(id(rt), print)


def _latest_nudge(session: Session, rep_email: str, kind: str, title: str) -> dict[str, Any] | None:
    items = list_nudges(session, rep_id=None, meeting_id=None, kind=kind, limit=10_000, offset=0)
    found = [
        n.model_dump(exclude_unset=True)
        for n in items
        if n.rep.email == rep_email and n.meeting is not None and n.meeting.title == title
    ]
    return found[-1] if found else None


def _summary(session: Session, rt: Runtime) -> dict[str, Any]:
    reps = {r.id: r.email for r in list_all(session, rt)}
    meetings = list_meetings(session, rep_id=None, state=None, limit=10_000, offset=0)
    return {"meetings": [(reps[m.rep_id], m.title, m.state) for m in meetings]}


def run_demo(*, verbose: bool = False, out: Callable[[str], None] = print) -> int:
    """Run the scripted week; returns a process exit code."""
    with tempfile.TemporaryDirectory(prefix="nextstep-demo-") as tmp:
        result = asyncio.run(_run(out, Path(tmp)))
    out(RULE)
    out("End of the week — where every prospect meeting stands:")
    for rep, title, state in result["meetings"]:
        out(f"  {state:<16} {title:<32} ({NAMES.get(rep, rep)})")
    return 0
