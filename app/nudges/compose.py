"""Compose a nudge: the message a rep (or a manager) reads, and the draft invite.

``compose(NudgeContext) -> Composed`` is pure: everything it needs is in the context, the
wording lives in ``templates/``:

- ``messages.yaml`` — the message, one section per locale (``en``, ``fr``), in the rep's
  locale. It says why the nudge came (which meeting, when, which window passed and when
  it closed), lists the suggested slots in the rep's *and* the prospect's zone, or says
  plainly that none could be found.
- ``draft_invite.yaml`` — the ready-to-send invite, always US business English since it
  goes to the prospect. It proposes the first slot in the prospect's zone ("Does Tuesday,
  November 24 at 10:00 AM EST work for you?"), or asks for their availability when there
  is no slot.

An ``escalation`` is written to the manager; its draft is the one the rep should have sent
for the unanswered nudge (``escalated_kind``).

``compose_account_at_risk`` is pure too: the owner's message in the owner's locale, and a
candid draft ("we may be falling short — tell us where") addressed to the account's
decision makers, in US business English; the wording lives in
``templates/account_at_risk.yaml``.

The formatting helpers (``format_slot``, ``format_time``, ``humanize``, ``zone_abbreviation``,
``call_length``, ``first_name``) are public so other nudge kinds and channels word dates and
durations the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from functools import cache
from importlib import resources
from typing import Any, Literal, get_args

import yaml

from policies.hours import check_timezone
from policies.slots import Slot
from policies.vocabulary import MEETING_NUDGE_KINDS, HealthLevel, NudgeKind, WindowName

__all__ = [
    "Composed",
    "NudgeContext",
    "Recipient",
    "call_length",
    "compose",
    "compose_account_at_risk",
    "first_name",
    "format_slot",
    "format_time",
    "humanize",
    "zone_abbreviation",
]

Locale = Literal["en", "fr"]

KINDS: tuple[NudgeKind, ...] = MEETING_NUDGE_KINDS
LOCALES: tuple[str, ...] = get_args(Locale)
#: The windows a nudge's message can name (an escalation names its unanswered nudge's).
WINDOW_NAMES: tuple[WindowName, ...] = (WindowName.INVITE_WITHIN, WindowName.ACCEPT_WITHIN)


@dataclass(frozen=True, kw_only=True, slots=True)
class NudgeContext:
    """Everything a nudge says, gathered by the caller; validated when built.

    ``window_name``/``window``/``window_closed_at`` describe the policy window that passed
    (for an escalation: the window of the unanswered nudge). ``follow_up_title`` and
    ``follow_up_start`` describe the existing follow-up (``not_accepted``,
    ``follow_up_declined``). For an ``escalation``, ``manager_email`` is required,
    ``escalated_kind`` is the kind of the unanswered nudge and ``nudged_at`` when it went out.
    """

    kind: NudgeKind
    locale: Locale = "en"
    rep_email: str
    rep_timezone: str
    manager_email: str | None = None
    meeting_title: str
    meeting_start: datetime
    meeting_end: datetime
    account_domain: str
    account_name: str | None = None
    prospect_timezone: str
    external_attendees: tuple[str, ...]
    slots: tuple[Slot, ...] = ()
    follow_up_duration: timedelta
    window_name: WindowName | None = None
    window: timedelta | None = None
    window_closed_at: datetime | None = None
    follow_up_title: str | None = None
    follow_up_start: datetime | None = None
    escalated_kind: NudgeKind | None = None
    nudged_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: {str(self.kind)!r} is not one of {', '.join(KINDS)}")
        object.__setattr__(self, "kind", NudgeKind(self.kind))
        if self.locale not in LOCALES:
            raise ValueError(f"locale: {self.locale!r} is not one of {', '.join(LOCALES)}")
        check_timezone(self.rep_timezone, field="rep_timezone")
        check_timezone(self.prospect_timezone, field="prospect_timezone")
        for name in ("meeting_start", "meeting_end"):
            _check_aware(name, getattr(self, name), required=True)
        for name in ("window_closed_at", "follow_up_start", "nudged_at"):
            _check_aware(name, getattr(self, name), required=False)
        if self.meeting_end < self.meeting_start:
            raise ValueError("meeting_end must not be before meeting_start")
        if not isinstance(self.follow_up_duration, timedelta) or self.follow_up_duration <= (
            timedelta(0)
        ):
            raise ValueError(
                f"follow_up_duration must be positive, got {self.follow_up_duration!r}"
            )
        if self.window_name is not None:
            if self.window_name not in WINDOW_NAMES:
                raise ValueError(
                    f"window_name: {str(self.window_name)!r} is not one of "
                    f"{', '.join(WINDOW_NAMES)}"
                )
            object.__setattr__(self, "window_name", WindowName(self.window_name))
        if self.window is not None and (
            not isinstance(self.window, timedelta) or self.window < timedelta(0)
        ):
            raise ValueError(f"window must be a non-negative timedelta, got {self.window!r}")
        if self.window_name is not None and self.window is None:
            raise ValueError(f"window_name {self.window_name!r} needs its window duration")
        if isinstance(self.external_attendees, str):
            raise ValueError("external_attendees must be a sequence of e-mails, not one string")
        object.__setattr__(self, "external_attendees", tuple(self.external_attendees))
        for email in self.external_attendees:
            if not isinstance(email, str) or "@" not in email:
                raise ValueError(f"external_attendees: {email!r} is not an e-mail address")
        object.__setattr__(self, "slots", tuple(self.slots))
        for slot in self.slots:
            if not isinstance(slot, Slot):
                raise ValueError(f"slots: {slot!r} is not a Slot")
        if self.kind == NudgeKind.ESCALATION:
            if not self.manager_email:
                raise ValueError("an escalation needs manager_email: it is the manager's message")
            if self.escalated_kind is not None:
                if self.escalated_kind not in KINDS[:3]:
                    raise ValueError(
                        f"escalated_kind: {str(self.escalated_kind)!r} is not one of "
                        f"{', '.join(KINDS[:3])}"
                    )
                object.__setattr__(self, "escalated_kind", NudgeKind(self.escalated_kind))
        elif self.escalated_kind is not None:
            raise ValueError("escalated_kind only applies to an escalation")


@dataclass(frozen=True, kw_only=True, slots=True)
class Composed:
    """A composed nudge: ``message`` for its reader, ``draft_invite`` for the prospect."""

    message: str
    draft_invite: dict[str, Any]  # {"subject": str, "body": str, "attendees": [str, ...]}


def compose(ctx: NudgeContext) -> Composed:
    """Word the nudge described by ``ctx``: the message in its locale and the draft invite."""
    return Composed(message=_message(ctx), draft_invite=_draft_invite(ctx))


# --- formatting helpers, shared with other nudge producers --------------------------------


def format_slot(dt: datetime, tz: str | tzinfo, locale: str = "en") -> str:
    """Date and time in ``tz``: "Tuesday, November 24 at 10:00 AM EST" /
    "mardi 24 novembre à 10:00 EST"."""
    t = _texts(locale)
    local = _localize(dt, tz)
    day_template = t["day_of_month"]["first" if local.day == 1 else "other"]
    return t["date_format"].format(
        weekday=t["weekdays"][local.weekday()],
        day=day_template.format(day=local.day),
        month=t["months"][local.month - 1],
        time=_clock(local, t),
        zone=zone_abbreviation(local),
    )


def format_time(dt: datetime, tz: str | tzinfo, locale: str = "en") -> str:
    """Time of day in ``tz`` with the zone: "10:00 AM EST" / "10:00 EST"."""
    local = _localize(dt, tz)
    return f"{_clock(local, _texts(locale))} {zone_abbreviation(local)}"


def zone_abbreviation(local: datetime) -> str:
    """The zone's abbreviation at that instant (EST, CEST, …); numeric ones as "GMT+9"."""
    name = local.tzname() or "UTC"
    match = re.fullmatch(r"([+-])(\d{2})(\d{2})?", name)
    if match is None:
        return name
    sign, hours, minutes = match[1], int(match[2]), int(match[3] or 0)
    if not hours and not minutes:
        return "GMT"
    return f"GMT{sign}{hours}" + (f":{minutes:02d}" if minutes else "")


def humanize(duration: timedelta, locale: str = "en") -> str:
    """A duration in words: "2 hours", "2 days", "1 day and 6 hours" / "1 jour et 6 heures"."""
    if duration < timedelta(0):
        raise ValueError(f"cannot humanize a negative duration, got {duration}")
    t = _texts(locale)
    total = int(duration.total_seconds())
    amounts = (
        ("day", total // 86400),
        ("hour", total % 86400 // 3600),
        ("minute", total % 3600 // 60),
        ("second", total % 60),
    )
    parts = [_count(n, t["units"][unit], locale) for unit, n in amounts if n]
    return _join(parts, locale) if parts else _count(0, t["units"]["minute"], locale)


def call_length(duration: timedelta) -> str:
    """The adjective for a call of that length: "15-minute", "1-hour", "90-minute"."""
    minutes = int(duration.total_seconds() // 60)
    if minutes >= 60 and minutes % 60 == 0:
        return f"{minutes // 60}-hour"
    return f"{minutes}-minute" if minutes else "quick"


_ROLE_WORDS = frozenset(
    "admin billing contact events hello help hr info jobs marketing news no noreply "
    "office press sales service support team".split()
)
_NAME_PART = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")


def first_name(email: str) -> str | None:
    """The first name in a first.last address ("dana.smith@acme.com" → "Dana"), else None."""
    local = email.partition("@")[0].partition("+")[0].lower()
    parts = local.split(".")
    if len(parts) < 2 or not all(_NAME_PART.fullmatch(part) for part in parts):
        return None
    if len(parts[0]) < 2 or parts[0] in _ROLE_WORDS or parts[-1] in _ROLE_WORDS:
        return None
    return "-".join(piece.capitalize() for piece in parts[0].split("-"))


# --- the message -------------------------------------------------------------------------


def _message(ctx: NudgeContext) -> str:
    t = _texts(ctx.locale)
    escalation = ctx.kind == NudgeKind.ESCALATION
    subject_kind = (ctx.escalated_kind or NudgeKind.NO_NEXT_STEP) if escalation else ctx.kind
    fields = {
        "meeting": _one_line(ctx.meeting_title) or t["untitled"],
        "account": ctx.account_name or ctx.account_domain,
        "meeting_when": format_slot(ctx.meeting_start, ctx.rep_timezone, ctx.locale),
        "rep": ctx.rep_email,
        "rep_timezone": ctx.rep_timezone,
        "prospect_timezone": ctx.prospect_timezone,
        "duration": humanize(ctx.follow_up_duration, ctx.locale),
        "attendees": _join(list(ctx.external_attendees), ctx.locale) or ctx.account_domain,
    }

    paragraphs: list[str] = []
    if escalation:
        name = first_name(ctx.manager_email or "")
        greeting = t["escalation_greeting"]
        paragraphs.append(greeting["named"].format(name=name) if name else greeting["anonymous"])

    why = [t["intro"][ctx.kind].format_map(fields)]
    if ctx.follow_up_start is not None and subject_kind in t["follow_up"]:
        why.append(
            t["follow_up"][subject_kind].format(
                follow_up=_follow_up_title(ctx),
                follow_up_when=format_slot(ctx.follow_up_start, ctx.rep_timezone, ctx.locale),
            )
        )
    if escalation:
        why.append(t["escalation_reason"][subject_kind])
    if ctx.window_name is not None and ctx.window is not None:
        why.append(t["window"][ctx.window_name].format(window=humanize(ctx.window, ctx.locale)))
        if ctx.window_closed_at is not None:
            closed = format_slot(ctx.window_closed_at, ctx.rep_timezone, ctx.locale)
            why.append(t["window_closed"].format(closed_when=closed))
    if escalation and ctx.nudged_at is not None:
        nudged = format_slot(ctx.nudged_at, ctx.rep_timezone, ctx.locale)
        why.append(t["escalation_sent"].format(rep=ctx.rep_email, nudged_when=nudged))
    paragraphs.append(" ".join(why))

    suffix = "_escalation" if escalation else ""
    slots = _offered_slots(ctx)
    if slots:
        lines = [t["slots_header" + suffix].format_map(fields)]
        lines += [t["slot_line"].format_map(_slot_fields(slot, ctx)) for slot in slots]
        paragraphs.append("\n".join(lines))
    else:
        paragraphs.append(t["no_slots" + suffix].format_map(fields))
    if ctx.external_attendees:
        paragraphs.append(t["draft_ready"].format_map(fields))
    if escalation:
        paragraphs.append(t["escalation_closing"].format_map(fields))
    return "\n\n".join(paragraphs)


def _offered_slots(ctx: NudgeContext) -> tuple[Slot, ...]:
    """The suggested slots, minus the follow-up's own time (proposing it again is no help)."""
    taken = ctx.follow_up_start
    return tuple(slot for slot in ctx.slots if taken is None or slot.start != taken)


def _slot_fields(slot: Slot, ctx: NudgeContext) -> dict[str, str]:
    """One slot in the rep's zone, and in the prospect's (the time alone when the date is
    the same in both zones)."""
    rep_local = _localize(slot.start, ctx.rep_timezone)
    prospect_local = _localize(slot.start, ctx.prospect_timezone)
    same_day = rep_local.date() == prospect_local.date()
    formatter = format_time if same_day else format_slot
    return {
        "rep_when": format_slot(slot.start, ctx.rep_timezone, ctx.locale),
        "prospect_when": formatter(slot.start, ctx.prospect_timezone, ctx.locale),
    }


# --- the draft invite --------------------------------------------------------------------


def _draft_invite(ctx: NudgeContext) -> dict[str, Any]:
    d = _draft_texts()
    kind = (
        (ctx.escalated_kind or NudgeKind.NO_NEXT_STEP)
        if ctx.kind == NudgeKind.ESCALATION
        else ctx.kind
    )
    slots = _offered_slots(ctx)
    fields = {
        "meeting": _one_line(ctx.meeting_title) or d["untitled_meeting"],
        "follow_up": _follow_up_title(ctx),
        "follow_up_when": (
            format_slot(ctx.follow_up_start, ctx.prospect_timezone, "en")
            if ctx.follow_up_start is not None
            else d["follow_up_unknown"]
        ),
        "length": call_length(ctx.follow_up_duration),
        "slot": format_slot(slots[0].start, ctx.prospect_timezone, "en") if slots else "",
        "alternative": (
            d["alternative"].format(slot2=format_slot(slots[1].start, ctx.prospect_timezone, "en"))
            if len(slots) > 1
            else ""
        ),
    }
    texts = d[kind]
    paragraph = texts["with_slot" if slots else "without_slot"].format_map(fields)
    rep_name = first_name(ctx.rep_email)
    signature = (
        d["signature"]["named"].format(name=rep_name) if rep_name else d["signature"]["anonymous"]
    )
    body = "\n\n".join([_greeting(ctx.external_attendees, d["greeting"]), paragraph, signature])
    return {
        "subject": texts["subject"].format_map(fields),
        "body": body,
        "attendees": list(ctx.external_attendees),
    }


def _greeting(attendees: tuple[str, ...], templates: dict[str, str]) -> str:
    names = [first_name(email) for email in attendees]
    if len(names) > 2:
        return templates["many"]
    if names and all(names):
        if len(names) == 1:
            return templates["one"].format(name=names[0])
        return templates["two"].format(first=names[0], second=names[1])
    return templates["unknown"]


def _follow_up_title(ctx: NudgeContext) -> str:
    title = _one_line(ctx.follow_up_title or "")
    if title:
        return title
    meeting = _one_line(ctx.meeting_title) or _draft_texts()["untitled_meeting"]
    return str(_draft_texts()["follow_up_title"].format(meeting=meeting))


# --- account_at_risk: the owner's message and a candid draft to the decision makers -------


@dataclass(frozen=True, kw_only=True, slots=True)
class Recipient:
    """Someone of the account the candid ``account_at_risk`` draft is addressed to."""

    email: str
    name: str | None = None
    language: str | None = None  # what this person reads, when the CRM says

    @property
    def first(self) -> str | None:
        if self.name and self.name.strip():
            return self.name.split()[0]
        return first_name(self.email)


@cache
def _risk_texts() -> dict[str, Any]:
    folder = resources.files("app.nudges").joinpath("templates")
    doc: dict[str, Any] = yaml.safe_load(
        folder.joinpath("account_at_risk.yaml").read_text(encoding="utf-8")
    )
    return doc


def _format_date(value: str, locale: str) -> str:
    d = date.fromisoformat(value)
    if locale == "fr":
        months = (
            "janvier février mars avril mai juin juillet août septembre octobre novembre décembre"
        ).split()
        return f"{'1er' if d.day == 1 else d.day} {months[d.month - 1]} {d.year}"
    return d.strftime("%B ") + f"{d.day}, {d.year}"


def compose_account_at_risk(
    *,
    health: dict[str, Any],
    previous: str | None,
    account_name: str | None,
    locale: str,
    owner_email: str,
    recipients: list[Recipient],
    topic: str | None = None,
    language: str | None = None,
    slots: tuple[Slot, ...] = (),
    timezone: str = "UTC",
    duration: timedelta = timedelta(minutes=20),
    calendar_checked: bool = True,
) -> tuple[str, dict[str, Any]]:
    """(message for the owner, draft invite for the decision makers).

    The message is in the owner's ``locale``; the draft in ``language`` (the account's
    people's: ``en`` or ``fr``, absent = US English). The draft names what the signals
    saw — which meetings slipped, who stopped coming, how far apart meetings are now —
    and proposes ``slots[0]`` (and ``slots[1]`` as the alternative) in ``timezone``.
    """
    t = _risk_texts()["messages"].get(locale) or _risk_texts()["messages"]["en"]
    account = f"{account_name} ({health['domain']})" if account_name else health["domain"]
    paragraphs = [
        t["intro"].format(
            account=account,
            level=t["levels"][health["level"]],
            score=health["score"],
            previous=t["levels"][previous or HealthLevel.HEALTHY],
        )
    ]
    if health.get("renewal_near") and health.get("renewal_date"):
        paragraphs.append(t["renewal"].format(renewal=_format_date(health["renewal_date"], locale)))
    lines = [t["signals_header"]]
    for s in health["signals"]:
        label = t["labels"].get(s["kind"])
        if label is None:  # a CRM signal: its explanation says who reported what
            lines.append(t["crm_line"].format(explanation=s["explanation"]))
        else:
            lines.append(t["signal_line"].format(label=label, explanation=s["explanation"]))
    paragraphs.append("\n".join(lines))
    lang = language if language in LOCALES else "en"
    if recipients:
        names = ", ".join(r.name or r.email for r in recipients)
        ready = t["draft_ready"].format(recipients=names)
        paragraphs.append(ready + (t["draft_language"][lang] if "draft_language" in t else ""))
    else:
        paragraphs.append(t["no_recipients"].format(domain=health["domain"]))
    if slots:
        paragraphs.append(
            t["slot_offered" if calendar_checked else "slot_unchecked"].format(
                slot=format_slot(slots[0].start, timezone, locale),
                length=humanize(duration, locale),
            )
        )

    d = _risk_texts()["draft"][lang]
    firsts = [r.first for r in recipients]
    if len(firsts) > 2:
        greeting = d["greeting"]["many"]
    elif firsts and all(firsts):
        greeting = (
            d["greeting"]["one"].format(name=firsts[0])
            if len(firsts) == 1
            else d["greeting"]["two"].format(first=firsts[0], second=firsts[1])
        )
    else:
        greeting = d["greeting"]["unknown"]
    items = _what_we_saw(health["signals"], recipients, d["items"], lang, timezone)
    body = d["body"].format(
        topic=d["topic"].format(topic=topic) if topic else "",
        seen=d["seen"].format(items=_join(items, lang)) if items else "",
    )
    minutes = int(duration.total_seconds() // 60)
    if slots:
        alternative = (
            d["alternative"].format(slot2=format_slot(slots[1].start, timezone, lang))
            if len(slots) > 1
            else ""
        )
        ask = d["ask_slot"].format(
            slot=format_slot(slots[0].start, timezone, lang),
            length=call_length(duration),
            minutes=minutes,
            alternative=alternative,
        )
    else:
        ask = d["ask"].format(minutes=minutes)
    owner = first_name(owner_email)
    signature = d["signature"]["named"].format(name=owner) if owner else d["signature"]["anonymous"]
    draft = {
        "subject": d["subject"],
        "body": "\n\n".join([f"{greeting} {body}", ask, signature]),
        "attendees": [r.email for r in recipients],
        "language": lang,
    }
    return "\n\n".join(paragraphs), draft


def _day(value: str, tz: str, locale: str) -> str:
    """ "November 24" / "24 novembre" of an ISO instant, in ``tz``."""
    local = _localize(datetime.fromisoformat(value), tz)
    t = _texts(locale)
    day = t["day_of_month"]["first" if local.day == 1 else "other"].format(day=local.day)
    month = t["months"][local.month - 1]
    return f"{day} {month}" if locale == "fr" else f"{month} {day}"


def _number(value: float, locale: str) -> str:
    text = f"{value:g}"
    return text.replace(".", ",") if locale == "fr" else text


def _what_we_saw(
    signals: list[dict[str, Any]],
    recipients: list[Recipient],
    items: dict[str, str],
    lang: str,
    tz: str,
) -> list[str]:
    """What the candid note names, from the signals' details: which meetings slipped (from
    when to when), which were cancelled, who stopped coming, how far apart meetings are."""
    out: list[str] = []
    by_kind = {s["kind"]: s.get("details") or {} for s in signals}
    moves = by_kind.get("meetings_postponed", {}).get("moves") or []
    slipped: dict[str, dict[str, str]] = {}
    for mv in moves:  # one line per meeting: its first start to its latest
        seen = slipped.setdefault(mv["event_id"], {"title": mv["title"], "old": mv["from"]})
        seen["new"] = mv["to"]
    for mv in list(slipped.values())[:2]:
        out.append(
            items["slipped"].format(
                title=_one_line(mv["title"]) or "…",
                old=_day(mv["old"], tz, lang),
                new=_day(mv["new"], tz, lang),
            )
        )
    if len(slipped) > 2:
        out.append(items["slipped_more"].format(count=len(slipped) - 2))
    for c in (by_kind.get("meetings_postponed", {}).get("cancelled") or [])[:1]:
        out.append(
            items["cancelled"].format(
                title=_one_line(c["title"]) or "…", day=_day(c["start"], tz, lang)
            )
        )
    people = by_kind.get("decision_makers_absent", {}).get("people") or []
    if people:
        mine = {r.email for r in recipients}
        n = min(p["missed"] for p in people)
        others = [p.get("name") or p["email"] for p in people if p["email"] not in mine]
        if len(others) < len(people):
            key = "absent_you_and" if others else "absent_you"
            out.append(items[key].format(names=_join(others, lang), n=n))
        elif others:
            key = "absent_one" if len(others) == 1 else "absent_many"
            out.append(items[key].format(names=_join(others, lang), n=n))
    cadence = by_kind.get("cadence_decay")
    if cadence:
        key = "silent" if cadence.get("silent") else "cadence"
        out.append(
            items[key].format(
                current=_number(round(cadence["current_days"]), lang),
                baseline=_number(round(cadence["baseline_days"]), lang),
            )
        )
    if "follow_ups_declined" in by_kind:
        out.append(items["declined"])
    named = {mv["title"] for mv in slipped.values()}
    for title in (by_kind.get("expansion_refused", {}).get("titles") or [])[:1]:
        if title not in named:  # a slipped meeting is named once
            out.append(items["expansion"].format(title=_one_line(title)))
    return out


# --- plumbing ----------------------------------------------------------------------------


@cache
def _templates() -> dict[str, Any]:
    folder = resources.files("app.nudges").joinpath("templates")
    messages = yaml.safe_load(folder.joinpath("messages.yaml").read_text(encoding="utf-8"))
    draft = yaml.safe_load(folder.joinpath("draft_invite.yaml").read_text(encoding="utf-8"))
    return {"messages": messages, "draft": draft}


def _texts(locale: str) -> dict[str, Any]:
    messages = _templates()["messages"]
    if locale not in messages:
        raise ValueError(f"locale: {locale!r} is not one of {', '.join(messages)}")
    texts: dict[str, Any] = messages[locale]
    return texts


def _draft_texts() -> dict[str, Any]:
    draft: dict[str, Any] = _templates()["draft"]
    return draft


def _localize(dt: datetime, tz: str | tzinfo) -> datetime:
    _check_aware("dt", dt, required=True)
    zone = check_timezone(tz, field="tz") if isinstance(tz, str) else tz
    return dt.astimezone(zone)


def _clock(local: datetime, texts: dict[str, Any]) -> str:
    hour12 = local.hour % 12 or 12
    return str(
        texts["time_format"].format(
            hour24=local.hour,
            hour12=hour12,
            minute=f"{local.minute:02d}",
            ampm="AM" if local.hour < 12 else "PM",
        )
    )


def _count(n: int, forms: list[str], locale: str) -> str:
    # French uses the singular below 2 ("0 minute", "1 jour"); English only for 1.
    singular = n < 2 if locale == "fr" else n == 1
    return f"{n} {forms[0] if singular else forms[1]}"


def _join(items: list[str], locale: str) -> str:
    """Join words: a / a and b / a, b, and c (en); a, b et c (fr)."""
    if len(items) < 2:
        return "".join(items)
    joins = _texts(locale)["list_join"]
    if len(items) == 2:
        return str(joins["pair"].format(first=items[0], last=items[1]))
    return str(joins["many"].format(head=", ".join(items[:-1]), last=items[-1]))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _check_aware(name: str, value: object, *, required: bool) -> None:
    if value is None and not required:
        return
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
