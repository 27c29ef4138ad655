"""Account health: the five silent signals of a customer leaving, read from calendar history.

Pure: no I/O, ``now`` is a parameter. The input is the account's history — one
``HistoryEntry`` per recorded change of one of its meetings, each carrying the meeting's
state after the change — plus what the CRM told us (contacts and their roles, renewal
date, its own signals). ``assess`` folds the history into meetings and reads:

- ``meetings_postponed`` — meetings moved later again and again, recurring reviews pushed
  past their period, cancellations from the customer's side ("polite procrastination");
- ``decision_makers_absent`` — decision makers or champions who used to attend and no
  longer do (or decline), meetings now only with user-level contacts;
- ``cadence_decay`` — the interval between meetings growing against the account's own
  baseline (the median of its past intervals), or no meeting for several of them;
- ``follow_ups_declined`` — invites declined, left unanswered or tentative more often
  than the account's own baseline;
- ``expansion_refused`` — expansion/upsell meetings declined, cancelled or pushed past
  the renewal;

and every CRM signal of the lookback window. The score is 100 minus the sum of
``weight × severity`` of the signals (× ``renewal_boost`` when the renewal is near), and
the level comes from two thresholds: all of it in ``SignalsPolicy``, which the policy
file's ``account_signals:`` section sets.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from policies import wording
from policies.vocabulary import ActorSide, HealthLevel, HistoryKind

SIGNAL_KINDS = (
    "meetings_postponed",
    "decision_makers_absent",
    "cadence_decay",
    "follow_ups_declined",
    "expansion_refused",
)
LEVELS = tuple(HealthLevel)  # best first
DECIDING_ROLES = ("decision_maker", "champion")
DEFAULT_WEIGHTS: Mapping[str, float] = {
    "meetings_postponed": 25.0,
    "decision_makers_absent": 35.0,
    "cadence_decay": 25.0,
    "follow_ups_declined": 20.0,
    "expansion_refused": 20.0,
    "crm": 10.0,
}
DEFAULT_KEYWORDS = (
    "expansion",
    "upsell",
    "up-sell",
    "upgrade",
    "cross-sell",
    "add-on",
    "additional seats",
    "more seats",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class SignalsPolicy:
    """Weights, thresholds and windows of account health (``account_signals:``)."""

    retention: timedelta = timedelta(days=548)  # ~18 months of history kept
    history_window: timedelta = timedelta(days=400)  # read back at registration: a year+
    lookback: timedelta = timedelta(days=90)  # what "lately" means
    recompute_every: timedelta = timedelta(days=1)
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    watch_below: float = 75.0  # score below this: watch
    at_risk_below: float = 50.0  # score below this: at risk
    renewal_window: timedelta = timedelta(days=90)
    renewal_boost: float = 1.5  # the same signals weigh this much more near the renewal
    postponed_min: int = 2  # postponements + customer cancellations in the lookback
    postponed_share: float = 0.1  # ... and at least this many per meeting of the account
    recent_meetings: int = 3  # decision makers absent from the last N meetings
    attended_before: int = 2  # ... who attended at least this many before
    cadence_ratio: float = 1.75  # recent interval / baseline interval
    cadence_min_intervals: int = 4  # past intervals needed for a baseline
    declined_min: int = 2  # declined/unanswered invites in the lookback
    declined_margin: float = 0.25  # ... above the account's baseline rate
    unanswered_after: timedelta = timedelta(days=2)
    expansion_keywords: tuple[str, ...] = DEFAULT_KEYWORDS

    def __post_init__(self) -> None:
        unknown = sorted(set(self.weights) - {*SIGNAL_KINDS, "crm"})
        if unknown:
            raise ValueError(
                f"weights.{unknown[0]}: not a signal kind ({', '.join((*SIGNAL_KINDS, 'crm'))})"
            )
        object.__setattr__(self, "weights", {**DEFAULT_WEIGHTS, **self.weights})
        for name, value in self.weights.items():
            if value < 0:
                raise ValueError(f"weights.{name}: must not be negative")
        if not 0 <= self.at_risk_below <= self.watch_below <= 100:
            raise ValueError("thresholds: need 0 <= at_risk <= watch <= 100")
        if self.renewal_boost < 1:
            raise ValueError("renewal_boost: must be at least 1")
        for name in (
            "postponed_min",
            "recent_meetings",
            "attended_before",
            "cadence_min_intervals",
            "declined_min",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1")
        if self.cadence_ratio <= 1:
            raise ValueError("cadence_ratio: must be more than 1")
        object.__setattr__(
            self,
            "expansion_keywords",
            tuple(k.strip().lower() for k in self.expansion_keywords if k.strip()),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class HistoryEntry:
    """One recorded change of one meeting with the account, and its state after it.

    ``kind``: ``seen`` (first sight), ``moved`` (``old_start`` → ``start``), ``attendees``,
    ``response``, ``cancelled``. ``actor_side`` tells who made the change: ``account``
    (the customer organises), ``internal`` (we do). ``attendees`` maps the account's people
    on the meeting to their response. ``account``, ``actor`` and ``detail`` are what
    policies/history.py records besides (the signals do not read them back).
    """

    event_id: str
    kind: HistoryKind
    at: datetime
    start: datetime
    end: datetime
    title: str = ""
    series_id: str | None = None
    old_start: datetime | None = None
    actor_side: ActorSide | None = None
    attendees: Mapping[str, str] = field(default_factory=dict)
    cancelled: bool = False
    account: str = ""
    actor: str | None = None
    detail: Mapping[str, Any] | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Contact:
    email: str
    role: str
    name: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class CrmSignal:
    kind: str
    occurred_at: datetime
    note: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Signal:
    kind: str
    severity: float  # 0..1
    since: datetime | date
    evidence: tuple[str, ...]
    explanation: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class Health:
    score: int
    level: HealthLevel
    signals: tuple[tuple[Signal, float], ...]  # each with the points it took off
    renewal_near: bool


ZERO = timedelta(0)
ASKING_ANSWERS = frozenset({"declined", "tentative", "proposed"})
"""Answers with which someone of the account asks for another time."""


@dataclass
class _Move:
    at: datetime
    old: datetime
    new: datetime
    side: str | None
    asked_by: str | None = None  # the account's attendee whose answer asked for the move
    seq: int = 0  # its place in the history

    @property
    def by_account(self) -> bool:
        """Made by the customer's side: they organise it, or one of them asked for it."""
        return self.side == ActorSide.ACCOUNT or self.asked_by is not None


@dataclass
class MeetingView:
    """A meeting as its history tells it."""

    event_id: str
    series_id: str | None
    title: str
    start: datetime
    end: datetime
    first_start: datetime
    first_seen: datetime
    attendees: dict[str, str]
    cancelled: bool = False
    cancelled_at: datetime | None = None
    cancelled_side: str | None = None
    cancelled_seq: int = 0
    cancel_asked_by: str | None = None  # the account's attendee who asked before it went
    moves: list[_Move] = field(default_factory=list)
    answered: set[str] = field(default_factory=set)  # who answered this very meeting
    asks: list[tuple[int, str]] = field(default_factory=list)  # (place, who) asked to move

    def with_account(self) -> bool:
        return any(r != "declined" for r in self.attendees.values())

    def held(self, now: datetime) -> bool:
        return not self.cancelled and self.start <= now and self.with_account()


def fold(entries: Iterable[HistoryEntry]) -> list[MeetingView]:
    """The account's meetings from its history (entries in the order they happened)."""
    views: dict[str, MeetingView] = {}
    for seq, e in enumerate(sorted(entries, key=lambda x: x.at)):
        v = views.get(e.event_id)
        if v is None:
            v = views[e.event_id] = MeetingView(
                event_id=e.event_id,
                series_id=e.series_id,
                title=e.title,
                start=e.start,
                end=e.end,
                first_start=e.old_start or e.start,
                first_seen=e.at,
                attendees=dict(e.attendees),
            )
        if e.kind == HistoryKind.RESPONSE and e.actor:
            v.answered.add(e.actor)
            if e.attendees.get(e.actor) in ASKING_ANSWERS:
                v.asks.append((seq, e.actor))
        if e.kind == HistoryKind.MOVED and e.old_start is not None and e.old_start != e.start:
            v.moves.append(_Move(at=e.at, old=e.old_start, new=e.start, side=e.actor_side, seq=seq))
        if e.cancelled and not v.cancelled:
            v.cancelled_at, v.cancelled_side, v.cancelled_seq = e.at, e.actor_side, seq
        v.cancelled = e.cancelled
        v.title, v.start, v.end, v.attendees = e.title, e.start, e.end, dict(e.attendees)
        v.series_id = e.series_id or v.series_id
    for v in views.values():
        # A move was asked for by the account when one of them answered "another time"
        # (declined, tentative, proposed) after the move before it: the rep moved it for
        # them. (A sync that brings the answer and the move together records the answer
        # first: policies/history.py.)
        last = -1
        for mv in v.moves:
            asked = [who for n, who in v.asks if last < n < mv.seq]
            mv.asked_by = asked[-1] if asked else None
            last = mv.seq
        if v.cancelled and v.cancelled_at is not None:
            # "I can't make it" and the rep deletes it: cancelled for the customer.
            asked = [who for n, who in v.asks if last < n < v.cancelled_seq]
            v.cancel_asked_by = asked[-1] if asked else None
    return sorted(views.values(), key=lambda x: (x.start, x.event_id))


def _days(delta: timedelta) -> float:
    return round(delta.total_seconds() / 86400, 1)


def _ids(views: Iterable[MeetingView]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.event_id for v in views))


# --- the five signals -----------------------------------------------------------------------


def meetings_postponed(
    views: Sequence[MeetingView], p: SignalsPolicy, now: datetime, locale: str = "en"
) -> Signal | None:
    since = now - p.lookback
    periods = _series_periods(views)
    later: list[tuple[MeetingView, _Move]] = [
        (v, mv)
        for v in views
        for mv in v.moves
        if mv.at >= since and mv.new > mv.old and mv.by_account  # never the rep's own moves
    ]
    past_period = [
        v
        for v, mv in later
        if v.series_id in periods and mv.new - v.first_start >= periods[v.series_id]
    ]
    cancels = [
        v
        for v in views
        if v.cancelled
        and (v.cancelled_side == ActorSide.ACCOUNT or v.cancel_asked_by is not None)
        and v.cancelled_at is not None
        and v.cancelled_at >= since
    ]
    recent = [v for v in views if max(v.start, v.first_start) >= since or v in cancels]
    hit = {v.event_id for v, _ in later} | {v.event_id for v in cancels}
    points = len(later) + len(cancels) + len(past_period)
    if not hit or points < p.postponed_min or points < p.postponed_share * len(recent):
        return None
    slipped = sum((mv.new - mv.old for _, mv in later), timedelta(0))
    firsts = [mv.at for _, mv in later] + [v.cancelled_at for v in cancels if v.cancelled_at]
    evidence = _ids([v for v, _ in later] + cancels)
    return Signal(
        kind="meetings_postponed",
        severity=min(1.0, max(points / (2.5 * p.postponed_min), _days(slipped) / 30)),
        since=min(firsts),
        evidence=evidence,
        explanation=wording.postponed(
            locale,
            moves=len(later),
            lookback_days=_days(p.lookback),
            slipped=_days(slipped),
            past_period=len(_ids(past_period)),
            cancels=len(cancels),
        ),
        details={
            "postponements": len(later),
            "days_slipped": _days(slipped),
            "past_period": len(_ids(past_period)),
            "customer_cancellations": len(cancels),
            # What the candid note names: which meetings slipped, from when to when.
            "moves": [
                {
                    "event_id": v.event_id,
                    "title": v.title,
                    "from": mv.old.isoformat(),
                    "to": mv.new.isoformat(),
                    "asked_by": mv.asked_by,
                }
                for v, mv in later
            ],
            "cancelled": [
                {"event_id": v.event_id, "title": v.title, "start": v.start.isoformat()}
                for v in cancels
            ],
        },
    )


def _series_periods(views: Sequence[MeetingView]) -> dict[str, timedelta]:
    by_series: dict[str, list[datetime]] = {}
    for v in views:
        if v.series_id:
            by_series.setdefault(v.series_id, []).append(v.first_start)
    out = {}
    for sid, starts in by_series.items():
        starts.sort()
        gaps = [b - a for a, b in zip(starts, starts[1:], strict=False) if b > a]
        if gaps:
            out[sid] = statistics.median_low(gaps)
    return out


def _present(v: MeetingView, email: str) -> bool:
    """On this meeting's own attendee list and not declining this very meeting."""
    return v.attendees.get(email, "declined") != "declined"


def _coming(v: MeetingView, email: str) -> bool:
    """Accepted an upcoming meeting by an answer of its own: an instance of a series shows
    the answer given to the whole series, which says nothing of this instance — unless the
    person answered this instance itself."""
    if v.attendees.get(email) != "accepted":
        return False
    return v.series_id is None or email in v.answered


def decision_makers_absent(
    views: Sequence[MeetingView],
    contacts: Sequence[Contact],
    p: SignalsPolicy,
    now: datetime,
    locale: str = "en",
) -> Signal | None:
    """Deciders who used to come and stopped: judged meeting by meeting (each instance of a
    series by its own answer and attendee list), against each person's own rhythm — an
    executive who comes to the monthly review is not absent from the weekly calls."""
    deciders = [c for c in contacts if c.role in DECIDING_ROLES]
    held = [v for v in views if v.held(now)]
    if not deciders or len(held) < p.recent_meetings:
        return None
    upcoming = [
        v
        for v in views
        if not v.cancelled and v.start > now and v.start <= now + p.lookback and v.attendees
    ]
    gone: list[tuple[Contact, list[MeetingView], MeetingView]] = []
    for c in deciders:
        came = [i for i, v in enumerate(held) if _present(v, c.email)]
        if len(came) < p.attended_before:
            continue
        last = held[came[-1]]
        missed = held[came[-1] + 1 :]
        if len(missed) < p.recent_meetings:
            continue
        gaps = [held[j].start - held[i].start for i, j in zip(came, came[1:], strict=False)]
        rhythm = timedelta(seconds=statistics.median(g.total_seconds() for g in gaps or [ZERO]))
        if now - last.start <= 2 * rhythm:
            continue  # not overdue by their own rhythm yet
        if any(_coming(v, c.email) for v in upcoming):
            continue
        gone.append((c, missed, last))
    if not gone:
        return None
    roles = {c.email: c.role for c in contacts}
    recent = held[-p.recent_meetings :]
    present = {e for v in recent for e, r in v.attendees.items() if r != "declined"}
    users_only = bool(present) and all(roles.get(e, "user") == "user" for e in present)
    declined = [
        c
        for c, missed, _ in gone
        if any(v.attendees.get(c.email) == "declined" for v in missed + upcoming)
    ]
    dropped = [
        c for c, missed, _ in gone if any(c.email not in v.attendees for v in missed + upcoming)
    ]
    text = wording.absent(
        locale,
        people=[(c.name or c.email, c.role) for c, _, _ in gone],
        missed=min(len(m) for _, m, _ in gone),
        declined=[c.name or c.email for c in declined],
        users_only=users_only,
    )
    missed_all = sorted({v.event_id: v for _, m, _ in gone for v in m}.values(), key=_at)
    return Signal(
        kind="decision_makers_absent",
        severity=min(1.0, 0.5 + 0.25 * (len(gone) - 1) + (0.25 if users_only else 0.0)),
        since=min(m[0].start for _, m, _ in gone),
        evidence=_ids(
            missed_all
            + [
                v
                for v in upcoming
                if any(v.attendees.get(c.email) == "declined" for c, _, _ in gone)
            ]
        ),
        explanation=text,
        details={
            "absent": [c.email for c, _, _ in gone],
            "users_only": users_only,
            # What the candid note names: who stopped coming, and since when.
            "people": [
                {
                    "email": c.email,
                    "name": c.name,
                    "role": c.role,
                    "last_attended": last.start.isoformat(),
                    "last_title": last.title,
                    "missed": len(missed),
                    "declined": c in declined,
                    "dropped": c in dropped,
                }
                for c, missed, last in gone
            ],
        },
    )


def _at(v: MeetingView) -> tuple[datetime, str]:
    return (v.start, v.event_id)


def _rhythm(intervals: Sequence[timedelta]) -> timedelta:
    """The usual interval: the median of intervals taken two by two (a Monday-and-Thursday
    rhythm is one rhythm, not two)."""
    if len(intervals) == 1:
        return intervals[0]
    pairs = [(a + b).total_seconds() / 2 for a, b in zip(intervals, intervals[1:], strict=False)]
    return timedelta(seconds=statistics.median(pairs))


def cadence_decay(
    views: Sequence[MeetingView], p: SignalsPolicy, now: datetime, locale: str = "en"
) -> Signal | None:
    """The account's recent rhythm against its own baseline.

    The baseline is the rhythm of the meetings held before the lookback (the year and more
    read at registration); the recent interval is the longer of the mean interval of the
    lookback and the median of the last three intervals — one holiday gap among weekly
    meetings is not a decay, two long intervals in a row are — or the silence since the
    last meeting when that is longer still. A history too short for a baseline before the lookback
    falls back on the last two intervals against all the earlier ones.
    """
    held: list[MeetingView] = []
    for v in views:  # one meeting a day at most: a workshop split in two is one touchpoint
        if v.held(now) and (not held or v.start.date() != held[-1].start.date()):
            held.append(v)
    intervals = [b.start - a.start for a, b in zip(held, held[1:], strict=False)]
    since = now - p.lookback
    ends = [b.start for b in held[1:]]
    before = [i for i, end in zip(intervals, ends, strict=True) if end < since]
    if len(before) >= p.cadence_min_intervals:
        baseline = _rhythm(before)
        recent = intervals[len(before) :] or intervals[-1:]
        window = len(recent)
    elif len(intervals) >= p.cadence_min_intervals + 1:
        baseline = _rhythm(intervals[:-2])
        recent, window = intervals[-2:], 2
    else:
        return None
    if baseline <= timedelta(0):
        return None
    upcoming = [v for v in views if not v.cancelled and v.start > now and v.with_account()]
    open_gap = now - held[-1].start  # the silence since the last meeting
    last3 = sorted(intervals[-3:])[len(intervals[-3:]) // 2]
    current = max(sum(recent, timedelta(0)) / len(recent), last3, open_gap)
    ratio = current / baseline
    if ratio < p.cadence_ratio:
        return None
    silent = open_gap >= current and open_gap > recent[-1]
    text = wording.cadence(
        locale,
        baseline=_days(baseline),
        current=_days(current),
        ratio=ratio,
        silent=silent,
        scheduled=bool(upcoming),
    )
    return Signal(
        kind="cadence_decay",
        severity=min(1.0, (ratio - 1) / (2 * (p.cadence_ratio - 1))),
        since=held[-1].start if silent else held[-1 - min(window, 2)].start,
        evidence=_ids(held[-1 - min(window, 2) :]),
        explanation=text,
        details={
            "baseline_days": _days(baseline),
            "current_days": _days(current),
            "ratio": round(ratio, 2),
            "baseline_meetings": len(held) - window,
            "silent": silent,
        },
    )


def follow_ups_declined(
    views: Sequence[MeetingView], p: SignalsPolicy, now: datetime, locale: str = "en"
) -> Signal | None:
    invites = [v for v in views if v.attendees][1:]  # the first meeting follows nothing
    since = now - p.lookback

    def bad(v: MeetingView) -> str | None:
        answers = set(v.attendees.values())
        if answers == {"declined"}:
            return "declined"
        if "accepted" in answers or v.cancelled:
            return None
        if v.start <= now or now - v.first_seen >= p.unanswered_after:
            return "tentative" if "tentative" in answers else "unanswered"
        return None

    recent = [v for v in invites if v.first_seen >= since]
    before = [v for v in invites if v.first_seen < since]
    recent_bad = [(v, b) for v in recent if (b := bad(v))]
    if len(recent_bad) < p.declined_min:
        return None
    base_rate = sum(1 for v in before if bad(v)) / len(before) if len(before) >= 3 else 0.2
    rate = len(recent_bad) / len(recent)
    if rate < base_rate + p.declined_margin:
        return None
    counts = {
        k: sum(1 for _, b in recent_bad if b == k) for k in ("declined", "unanswered", "tentative")
    }
    return Signal(
        kind="follow_ups_declined",
        severity=min(1.0, (rate - base_rate) / 0.5),
        since=min(v.first_seen for v, _ in recent_bad),
        evidence=_ids(v for v, _ in recent_bad),
        explanation=wording.declined(
            locale,
            bad=len(recent_bad),
            recent=len(recent),
            counts=counts,
            baseline_rate=base_rate,
        ),
        details={**counts, "rate": round(rate, 2), "baseline_rate": round(base_rate, 2)},
    )


def expansion_refused(
    views: Sequence[MeetingView],
    renewal: date | None,
    p: SignalsPolicy,
    now: datetime,
    locale: str = "en",
) -> Signal | None:
    if not p.expansion_keywords:
        return None
    pattern = re.compile(
        r"\b(" + "|".join(re.escape(k) for k in p.expansion_keywords) + r")\b", re.I
    )
    since = now - 2 * p.lookback
    refused: list[tuple[MeetingView, str]] = []
    for v in views:
        if not pattern.search(v.title) or max(v.start, v.first_seen) < since:
            continue
        if v.cancelled:
            refused.append((v, "cancelled"))
        elif v.attendees and set(v.attendees.values()) == {"declined"}:
            refused.append((v, "declined"))
        elif renewal is not None and v.first_start.date() < renewal <= v.start.date():
            refused.append((v, "pushed"))
    if not refused:
        return None
    return Signal(
        kind="expansion_refused",
        severity=min(1.0, 0.6 + 0.2 * (len(refused) - 1)),
        since=min(v.start for v, _ in refused),
        evidence=_ids(v for v, _ in refused),
        explanation=wording.expansion(locale, [(v.title, why) for v, why in refused]),
        details={"refused": len(refused), "titles": [v.title for v, _ in refused]},
    )


def crm_signals(
    signals: Sequence[CrmSignal], p: SignalsPolicy, now: datetime, locale: str = "en"
) -> list[Signal]:
    by_kind: dict[str, list[CrmSignal]] = {}
    for s in sorted(signals, key=lambda s: s.occurred_at):
        if now - p.lookback <= s.occurred_at <= now:
            by_kind.setdefault(s.kind, []).append(s)
    out = []
    for kind, items in by_kind.items():
        out.append(
            Signal(
                kind=kind,
                severity=1.0,
                since=items[0].occurred_at,
                evidence=tuple(s.occurred_at.date().isoformat() for s in items),
                explanation=wording.crm(
                    locale,
                    kind=kind,
                    days=[s.occurred_at.date() for s in items],
                    notes=[s.note for s in items if s.note],
                ),
                details={"source": "crm", "count": len(items)},
            )
        )
    return out


# --- score and level --------------------------------------------------------------------------


def renewal_near(renewal: date | None, p: SignalsPolicy, now: datetime) -> bool:
    if renewal is None:
        return False
    left = renewal - now.date()
    return timedelta(0) <= left <= p.renewal_window


def level_of(score: float, p: SignalsPolicy) -> HealthLevel:
    if score < p.at_risk_below:
        return HealthLevel.AT_RISK
    if score < p.watch_below:
        return HealthLevel.WATCH
    return HealthLevel.HEALTHY


def assess(
    entries: Iterable[HistoryEntry],
    *,
    contacts: Sequence[Contact] = (),
    renewal: date | None = None,
    crm: Sequence[CrmSignal] = (),
    policy: SignalsPolicy,
    now: datetime,
    locale: str = "en",
) -> Health:
    """The account's signals, score (100 = healthy) and level at ``now``; every
    explanation in ``locale`` (``en``, ``fr``: the owner's)."""
    views = fold(entries)
    lang = wording.lang(locale)
    found = [
        meetings_postponed(views, policy, now, lang),
        decision_makers_absent(views, contacts, policy, now, lang),
        cadence_decay(views, policy, now, lang),
        follow_ups_declined(views, policy, now, lang),
        expansion_refused(views, renewal, policy, now, lang),
    ]
    signals: list[Signal] = [s for s in found if s is not None]
    signals += crm_signals(crm, policy, now, lang)
    near = renewal_near(renewal, policy, now)
    boost = policy.renewal_boost if near else 1.0
    scored = []
    for s in signals:
        weight = policy.weights.get(s.kind, policy.weights["crm"])
        scored.append((s, round(weight * s.severity * boost, 1)))
    score = max(0, round(100 - sum(points for _, points in scored)))
    return Health(
        score=score, level=level_of(score, policy), signals=tuple(scored), renewal_near=near
    )


def severity_label(severity: float) -> str:
    return "high" if severity >= 0.75 else "medium" if severity >= 0.4 else "low"


def worse(new: str, old: str | None) -> bool:
    """True when ``new`` is a worse level than ``old`` (no level yet counts as healthy)."""
    return LEVELS.index(HealthLevel(new)) > LEVELS.index(HealthLevel(old or HealthLevel.HEALTHY))
