"""A prospect meeting's state, its due nudges and its next time trigger. Pure: no I/O.

    upcoming ──end──▶ needs_next_step ──invite──▶ invited ──accepted──▶ secured
                           ▲                         │                    │
                           └── declined by all, cancelled, moved past the horizon
    any ──waive──▶ waived

The rule holds every time (CONTRACT.md, "The rule holds every time"): each nudge comes at
most once per meeting, kind and **cycle** (the database enforces it). The first cycle opens
when the meeting ends; a new one opens each time the meeting goes back to
``needs_next_step`` from ``invited`` or ``secured``, and its ``invite_within`` counts from
that moment. Within a cycle, every new follow-up invite and every move of the follow-up to
a new time is a new *round*: it starts its own ``accept_within``, so ``not_accepted`` is
once per cycle and round.

Nudges:
- no_next_step        no live follow-up, ``invite_within`` passed since the cycle opened
- not_accepted        a follow-up exists, nobody of the account accepted, ``accept_within``
                      passed since this invite appeared or was last moved
- follow_up_declined  the follow-up was declined by every one of the account's attendees
                      (it stands for the cycle's ``no_next_step``: the rep was told, with slots)
- counter_proposed    someone of the account proposed a new time for the follow-up (Outlook;
                      with a tentative answer or a decline: the follow-up stays live, its
                      responses show "proposed"); once per cycle and round
- escalation          a nudge went unanswered (the state did not move) for `escalate_after`
                      and the rep has a manager; once per cycle and round

Windows that closed before the meeting was tracked (rep registration) never nudge.
Snoozing defers every nudge to the end of the snooze.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

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
    responses: dict[
        str, str
    ]  # the account's people → accepted|declined|tentative|needs_action|proposed
    seen_at: datetime
    proposals: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    uid: str | None = None  # iCalUID: copies of one follow-up on several reps' calendars
    organised: bool = False  # this copy is the organiser's (it carries every answer)

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
    produced: frozenset[tuple[str, int, int]] = frozenset()  # (kind, cycle, round)
    # Where the meeting's cycles stood at the last decision.
    previous_state: MeetingState | None = None
    cycle: int = 0
    cycle_started_at: datetime | None = None  # None: the first cycle, from the meeting's end
    invite_round: int = 0
    follow_up_key: str | None = None  # the follow-up (event and start) of the current round
    accept_from: datetime | None = None  # when the current round's accept_within started


def follow_up_key(c: Candidate) -> str:
    """One follow-up at one time: a new invite or a move gives another key."""
    return f"{c.event_id}@{c.start.astimezone(UTC).isoformat()}"


def _event_of_key(key: str | None) -> str | None:
    return None if key is None else key.rsplit("@", 1)[0]


@dataclass(frozen=True, kw_only=True, slots=True)
class DueNudge:
    kind: NudgeKind
    window_name: WindowName | None = None  # None: told at once, no window closed
    window: timedelta | None = None
    window_closed_at: datetime | None = None
    escalated_kind: NudgeKind | None = None
    cycle: int = 0
    round: int = 0  # the invite round for not_accepted, counter_proposed (and their escalation)
    proposed_by: str | None = None  # counter_proposed: who proposed, and what
    proposed_start: datetime | None = None
    proposed_end: datetime | None = None


def _windowed(
    kind: NudgeKind,
    name: WindowName,
    policy: Policy,
    close: datetime,
    cycle: int,
    *,
    round: int = 0,
    escalated_kind: NudgeKind | None = None,
) -> DueNudge:
    """A nudge owed because the policy's window ``name`` closed at ``close``."""
    return DueNudge(
        kind=kind,
        window_name=name,
        window=getattr(policy, name.value),
        window_closed_at=close,
        escalated_kind=escalated_kind,
        cycle=cycle,
        round=round,
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class Decision:
    state: MeetingState
    follow_up: Candidate | None
    declined: Candidate | None
    nudges: tuple[DueNudge, ...] = ()
    due_at: datetime | None = None
    baseline_declined_id: str | None = None
    pending: tuple[tuple[datetime, DueNudge], ...] = field(default=())
    cycle: int = 0
    cycle_started_at: datetime | None = None
    invite_round: int = 0
    follow_up_key: str | None = None
    accept_from: datetime | None = None
    restarted: bool = False  # a new cycle or round began: earlier nudges are answered


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

    # Cycles: back to needs_next_step from invited or secured opens a new one, now.
    cycle, cycle_started_at = m.cycle, m.cycle_started_at
    if state == MeetingState.NEEDS_NEXT_STEP and m.previous_state in (
        MeetingState.INVITED,
        MeetingState.SECURED,
    ):
        cycle, cycle_started_at = cycle + 1, now
    # Rounds: a new follow-up invite, or a move of it, starts its own accept_within.
    invite_round, fu_key, accept_from = m.invite_round, m.follow_up_key, m.accept_from
    previous_follow_up = _event_of_key(fu_key)
    if follow_up is not None and not m.waived and follow_up_key(follow_up) != fu_key:
        moved = previous_follow_up == follow_up.event_id
        invite_round += 1
        fu_key = follow_up_key(follow_up)
        # An invite counts from when it appeared; a move from when it was seen moved.
        accept_from = max(now, follow_up.seen_at) if moved else follow_up.seen_at
    restarted = cycle != m.cycle or invite_round != m.invite_round
    last_nudge_at = None if restarted else m.last_nudge_at

    triggers: list[tuple[datetime, DueNudge]] = []
    if state == MeetingState.NEEDS_NEXT_STEP:
        # A decline tells the rep at once, when it is the follow-up that just went dead
        # (not an older declined invite still in the window, not one known at registration).
        fresh = declined is not None and (
            previous_follow_up is None or previous_follow_up == declined.event_id
        )
        if declined is not None and fresh:
            if declined.event_id != baseline_declined:
                triggers.append(
                    (
                        now,
                        DueNudge(
                            kind=NudgeKind.FOLLOW_UP_DECLINED,
                            cycle=cycle,
                        ),
                    )
                )
        else:
            close = window_clock(cycle_started_at or m.end, policy.invite_within)
            if close > m.tracked_from:
                triggers.append(
                    (
                        close,
                        _windowed(
                            NudgeKind.NO_NEXT_STEP, WindowName.INVITE_WITHIN, policy, close, cycle
                        ),
                    )
                )
    elif state == MeetingState.INVITED and follow_up is not None:
        if follow_up.proposals:
            # A counter-proposal (with a tentative answer or a decline) tells the rep at once.
            by, (p_start, p_end) = min(
                follow_up.proposals.items(), key=lambda kv: (kv[1][0], kv[0])
            )
            triggers.append(
                (
                    now,
                    DueNudge(
                        kind=NudgeKind.COUNTER_PROPOSED,
                        cycle=cycle,
                        round=invite_round,
                        proposed_by=by,
                        proposed_start=p_start,
                        proposed_end=p_end,
                    ),
                )
            )
        close = window_clock(accept_from or follow_up.seen_at, policy.accept_within)
        if close > m.tracked_from:
            triggers.append(
                (
                    max(close, m.end),
                    _windowed(
                        NudgeKind.NOT_ACCEPTED,
                        WindowName.ACCEPT_WITHIN,
                        policy,
                        close,
                        cycle,
                        round=invite_round,
                    ),
                )
            )
    if (
        can_escalate
        and state in OPEN_STATES
        and last_nudge_at is not None
        and m.last_nudge_state == state
    ):
        close = window_clock(last_nudge_at, policy.escalate_after)
        triggers.append(
            (
                close,
                _windowed(
                    NudgeKind.ESCALATION,
                    WindowName.ESCALATE_AFTER,
                    policy,
                    close,
                    cycle,
                    escalated_kind=last_nudge_kind,
                    round=invite_round
                    if last_nudge_kind in (NudgeKind.NOT_ACCEPTED, NudgeKind.COUNTER_PROPOSED)
                    else 0,
                ),
            )
        )

    pending = []
    for at, nudge in triggers:
        if (nudge.kind, nudge.cycle, nudge.round) in m.produced:
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
        cycle=cycle,
        cycle_started_at=cycle_started_at,
        invite_round=invite_round,
        follow_up_key=fu_key,
        accept_from=accept_from,
        restarted=restarted,
    )
