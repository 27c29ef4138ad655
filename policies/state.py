"""A prospect meeting's state, its due nudges and its next time trigger. Pure: no I/O.

    upcoming ──end──▶ needs_next_step ──invite──▶ invited ──accepted──▶ secured
                           ▲                         │
                           └── declined by all, cancelled, moved past the horizon
    any ──waive──▶ waived

Nudges (each at most once per meeting and kind; the database enforces it):
- no_next_step        the meeting ended, no follow-up ever appeared, `invite_within` passed
- not_accepted        a follow-up exists, nobody of the account accepted, `accept_within`
                      passed since it appeared
- follow_up_declined  the follow-up was declined by every one of the account's attendees
- escalation          a nudge went unanswered (the state did not move) for `escalate_after`
                      and the rep has a manager

Windows that closed before the meeting was tracked (rep registration) never nudge.
Snoozing defers every nudge to the end of the snooze.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from policies.model import Policy
from policies.vocabulary import OPEN_STATES, MeetingState, NudgeKind, WindowName

WindowClock = Callable[[datetime, timedelta], datetime]
"""Where a window that opens at an instant closes: wall-clock addition (``clock: calendar``)
or working time (``clock: business``, policies.business.add_business)."""


def calendar_clock(start: datetime, window: timedelta) -> datetime:
    return start + window


@dataclass(frozen=True, kw_only=True, slots=True)
class Candidate:
    """A later event with someone of the meeting's account on it."""

    event_id: str
    title: str
    start: datetime
    end: datetime
    responses: dict[str, str]  # the account's people → accepted|declined|tentative|needs_action
    seen_at: datetime

    @property
    def live(self) -> bool:
        return any(r != "declined" for r in self.responses.values())

    @property
    def accepted(self) -> bool:
        return any(r == "accepted" for r in self.responses.values())


@dataclass(frozen=True, kw_only=True, slots=True)
class MeetingFacts:
    start: datetime
    end: datetime
    tracked_from: datetime
    waived: bool = False
    snoozed_until: datetime | None = None
    baseline_declined_id: str | None = None
    last_nudge_at: datetime | None = None
    last_nudge_state: MeetingState | None = None
    produced: frozenset[str] = frozenset()


@dataclass(frozen=True, kw_only=True, slots=True)
class DueNudge:
    kind: NudgeKind
    window_name: WindowName | None
    window: timedelta | None
    window_closed_at: datetime | None
    escalated_kind: NudgeKind | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Decision:
    state: MeetingState
    follow_up: Candidate | None
    declined: Candidate | None
    nudges: tuple[DueNudge, ...] = ()
    due_at: datetime | None = None
    baseline_declined_id: str | None = None
    pending: tuple[tuple[datetime, DueNudge], ...] = field(default=())


def decide(
    m: MeetingFacts,
    candidates: Sequence[Candidate],
    policy: Policy,
    now: datetime,
    *,
    can_escalate: bool,
    baseline: bool = False,
    last_nudge_kind: NudgeKind | None = None,
    window_clock: WindowClock = calendar_clock,
) -> Decision:
    """The meeting's state now, the nudges due now, and when to look again."""
    horizon_end = m.end + policy.horizon
    in_window = sorted(
        (c for c in candidates if m.end <= c.start <= horizon_end),
        key=lambda c: (c.start, c.event_id),
    )
    live = [c for c in in_window if c.live]
    follow_up = live[0] if live else None
    dead = [c for c in in_window if not c.live]
    declined = max(dead, key=lambda c: (c.seen_at, c.event_id)) if dead and not live else None
    baseline_declined = m.baseline_declined_id
    if baseline and declined is not None:
        baseline_declined = declined.event_id

    if m.waived:
        state = MeetingState.WAIVED
    elif now < m.end:
        state = MeetingState.UPCOMING
    elif follow_up is not None:
        state = MeetingState.SECURED if follow_up.accepted else MeetingState.INVITED
    else:
        state = MeetingState.NEEDS_NEXT_STEP

    triggers: list[tuple[datetime, DueNudge]] = []
    if state == MeetingState.NEEDS_NEXT_STEP:
        if declined is not None:
            if declined.event_id != baseline_declined:
                triggers.append(
                    (
                        now,
                        DueNudge(
                            kind=NudgeKind.FOLLOW_UP_DECLINED,
                            window_name=None,
                            window=None,
                            window_closed_at=None,
                        ),
                    )
                )
        else:
            close = window_clock(m.end, policy.invite_within)
            if close > m.tracked_from:
                triggers.append(
                    (
                        close,
                        DueNudge(
                            kind=NudgeKind.NO_NEXT_STEP,
                            window_name=WindowName.INVITE_WITHIN,
                            window=policy.invite_within,
                            window_closed_at=close,
                        ),
                    )
                )
    elif state == MeetingState.INVITED and follow_up is not None:
        close = window_clock(follow_up.seen_at, policy.accept_within)
        if close > m.tracked_from:
            triggers.append(
                (
                    max(close, m.end),
                    DueNudge(
                        kind=NudgeKind.NOT_ACCEPTED,
                        window_name=WindowName.ACCEPT_WITHIN,
                        window=policy.accept_within,
                        window_closed_at=close,
                    ),
                )
            )
    if (
        can_escalate
        and state in OPEN_STATES
        and m.last_nudge_at is not None
        and m.last_nudge_state == state
    ):
        close = window_clock(m.last_nudge_at, policy.escalate_after)
        triggers.append(
            (
                close,
                DueNudge(
                    kind=NudgeKind.ESCALATION,
                    window_name=WindowName.ESCALATE_AFTER,
                    window=policy.escalate_after,
                    window_closed_at=close,
                    escalated_kind=last_nudge_kind,
                ),
            )
        )

    pending = []
    for at, nudge in triggers:
        if nudge.kind in m.produced:
            continue
        if m.snoozed_until is not None and at < m.snoozed_until:
            at = m.snoozed_until
        pending.append((at, nudge))
    due_now = tuple(n for at, n in pending if at <= now)
    later = [at for at, _ in pending if at > now]
    if state == MeetingState.UPCOMING:
        later.append(m.end)
    return Decision(
        state=state,
        follow_up=follow_up,
        declined=declined,
        nudges=due_now,
        due_at=min(later) if later else None,
        baseline_declined_id=baseline_declined,
        pending=tuple(pending),
    )
