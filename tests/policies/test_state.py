"""A prospect meeting's state, the nudges due and when to look again: ``policies.state.decide``,
rule by rule.

Each test names one rule of CONTRACT.md "Prospect meetings and their state" and "Nudges"
(and the README's state and nudge tables). ``decide`` is pure: the meeting's facts, the
candidate follow-ups (later events with someone of its account, already classified), the
policy and ``now`` go in; the state, the nudges due now and the next due time come out.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.model import Policy
from policies.state import Candidate, Decision, MeetingFacts, decide, follow_up_key

# Property tests check rules, not speed: a loaded machine must not fail them.
RULE = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

S, M, H, D = (timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1), timedelta(days=1))
START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday
END = START + H
POLICY = Policy(
    name="prospect-default",
    invite_within=2 * H,
    accept_within=2 * D,
    horizon=14 * D,
    follow_up_duration=15 * M,
    escalate_after=3 * D,
)
DANA, BOB = "dana.smith@acme.com", "bob.jones@acme.com"


def meeting(**kw: object) -> MeetingFacts:
    """The 10:00–11:00 meeting, tracked since the day before.

    ``produced`` may name kinds alone: each is then of the first cycle (``not_accepted``
    and an escalation of one: of the first invite round).
    """
    fields: dict[str, object] = {"start": START, "end": END, "tracked_from": START - D}
    fields.update(kw)
    fields["produced"] = frozenset(
        k
        if isinstance(k, tuple)
        else (k, 0, 1 if k == "not_accepted" or (k == "escalation" and escalated_invite(kw)) else 0)
        for k in fields.get("produced", frozenset())  # type: ignore[attr-defined]
    )
    return MeetingFacts(**fields)  # type: ignore[arg-type]


def escalated_invite(kw: dict[str, object]) -> bool:
    return kw.get("last_nudge_state") == "invited"


def known(m: MeetingFacts, candidates: tuple[Candidate, ...]) -> MeetingFacts:
    """The meeting as the previous decision left it: its follow-up (if any) already seen,
    in the first invite round."""
    if m.follow_up_key is not None or m.invite_round:
        return m
    live = sorted(
        (c for c in candidates if m.end <= c.start <= m.end + POLICY.horizon and c.live),
        key=lambda c: (c.start, c.event_id),
    )
    if not live:
        return m
    return replace(
        m, follow_up_key=follow_up_key(live[0]), invite_round=1, accept_from=live[0].seen_at
    )


def invite(
    event_id: str = "fu",
    *,
    start: datetime = END + D,
    responses: dict[str, str] | None = None,
    seen_at: datetime = END + 30 * M,
) -> Candidate:
    """A follow-up invite: 30 minutes the next day, sent half an hour after the meeting."""
    return Candidate(
        event_id=event_id,
        title="Next step",
        start=start,
        end=start + 30 * M,
        responses={DANA: "needs_action"} if responses is None else responses,
        seen_at=seen_at,
    )


def run(
    m: MeetingFacts,
    candidates: tuple[Candidate, ...] = (),
    *,
    now: datetime,
    can_escalate: bool = False,
    baseline: bool = False,
    last_nudge_kind: str | None = None,
) -> Decision:
    return decide(
        known(m, candidates),
        candidates,
        POLICY,
        now,
        can_escalate=can_escalate,
        baseline=baseline,
        last_nudge_kind=last_nudge_kind,
    )


def kinds(d: Decision) -> list[str]:
    return [n.kind for n in d.nudges]


# --- states -------------------------------------------------------------------------------


def test_upcoming_until_the_meeting_ends_then_due_at_its_end():
    d = run(meeting(), now=END - S)
    assert (d.state, kinds(d), d.due_at) == ("upcoming", [], END)
    assert run(meeting(), now=END).state == "needs_next_step"


def test_upcoming_even_when_a_follow_up_was_already_sent_or_accepted():
    sent = invite(seen_at=START - D)
    accepted = invite(responses={DANA: "accepted"}, seen_at=START - D)
    assert run(meeting(), (sent,), now=START).state == "upcoming"
    assert run(meeting(), (accepted,), now=START).state == "upcoming"


def test_needs_next_step_when_it_ended_with_no_follow_up():
    d = run(meeting(), now=END + M)
    assert (d.state, d.follow_up, d.declined) == ("needs_next_step", None, None)


@pytest.mark.parametrize("answer", ["needs_action", "tentative"])
def test_invited_while_nobody_of_the_account_accepted(answer):
    fu = invite(responses={DANA: answer, BOB: "declined"})
    d = run(meeting(), (fu,), now=END + H)
    assert (d.state, d.follow_up) == ("invited", fu)


def test_secured_when_someone_of_the_account_accepted():
    fu = invite(responses={DANA: "declined", BOB: "accepted"})
    d = run(meeting(), (fu,), now=END + H)
    assert (d.state, d.follow_up, kinds(d), d.due_at) == ("secured", fu, [], None)


@pytest.mark.parametrize(
    ("now", "candidates"),
    [
        (START, ()),  # not ended yet
        (END + D, ()),  # no follow-up
        (END + D, (invite(),)),  # invited
        (END + D, (invite(responses={DANA: "accepted"}),)),  # secured
        (END + D, (invite(responses={DANA: "declined"}),)),  # declined
    ],
)
def test_waived_beats_every_other_state_and_never_nudges(now, candidates):
    m = meeting(waived=True, last_nudge_at=END, last_nudge_state="needs_next_step")
    d = run(m, candidates, now=now + 30 * D, can_escalate=True)
    assert (d.state, kinds(d), d.due_at) == ("waived", [], None)


# --- which event is the follow-up ---------------------------------------------------------


def test_a_follow_up_declined_by_every_one_of_the_account_is_no_follow_up():
    fu = invite(responses={DANA: "declined", BOB: "declined"})
    d = run(meeting(), (fu,), now=END + H)
    assert (d.state, d.follow_up, d.declined) == ("needs_next_step", None, fu)


def test_a_cancelled_follow_up_leaves_no_candidate_so_it_needs_a_next_step():
    # A cancelled event is not a candidate at all (follow_up_responses gives None).
    assert run(meeting(), (), now=END + D).state == "needs_next_step"


def test_the_follow_up_is_the_earliest_later_event():
    first = invite("b", start=END + D)
    later = invite("a", start=END + 2 * D, responses={DANA: "accepted"})
    d = run(meeting(), (later, first), now=END + H)
    # The later event being accepted does not secure the meeting: the earliest one counts.
    assert (d.state, d.follow_up) == ("invited", first)


def test_events_starting_at_the_same_time_are_ordered_by_event_id():
    one, two = invite("one"), invite("two", responses={DANA: "accepted"})
    assert run(meeting(), (two, one), now=END + H).follow_up == one


def test_an_earlier_declined_event_does_not_hide_a_later_live_one():
    gone = invite("gone", start=END + D, responses={DANA: "declined"})
    live = invite("live", start=END + 3 * D, responses={BOB: "accepted"})
    d = run(meeting(), (gone, live), now=END + H)
    assert (d.state, d.follow_up, d.declined) == ("secured", live, None)


def test_the_follow_up_must_start_within_the_horizon():
    edge = invite(start=END + POLICY.horizon)
    past = invite(start=END + POLICY.horizon + S)
    assert run(meeting(), (edge,), now=END + H).state == "invited"
    assert run(meeting(), (past,), now=END + H).state == "needs_next_step"


def test_an_event_starting_before_the_meeting_ends_is_not_its_follow_up():
    assert run(meeting(), (invite(start=END - M),), now=END + H).state == "needs_next_step"
    assert run(meeting(), (invite(start=END),), now=END + H).state == "invited"


def test_a_follow_up_moved_past_the_horizon_needs_a_next_step_again():
    fu = invite(responses={DANA: "accepted"})
    assert run(meeting(), (fu,), now=END + H).state == "secured"
    moved = replace(fu, start=END + POLICY.horizon + D, end=END + POLICY.horizon + D + H)
    assert run(meeting(), (moved,), now=END + H).state == "needs_next_step"


@pytest.mark.parametrize(
    ("answer", "state"), [("accepted", "secured"), ("needs_action", "invited")]
)
def test_a_follow_up_that_already_took_place_counts(answer, state):
    fu = invite(start=END + D, responses={DANA: answer})
    d = run(meeting(), (fu,), now=END + 10 * D)
    assert (d.state, d.follow_up) == (state, fu)


# --- no_next_step ---------------------------------------------------------------------------


def test_no_next_step_comes_when_invite_within_closes():
    close = END + POLICY.invite_within
    before = run(meeting(), now=close - S)
    assert (kinds(before), before.due_at) == ([], close)
    (nudge,) = run(meeting(), now=close).nudges
    assert nudge.kind == "no_next_step"
    assert (nudge.window_name, nudge.window, nudge.window_closed_at) == (
        "invite_within",
        POLICY.invite_within,
        close,
    )
    assert kinds(run(meeting(), now=close + 5 * D)) == ["no_next_step"]  # still due later


def test_no_next_step_is_not_due_once_a_follow_up_exists():
    fu = invite(seen_at=END + H)
    assert "no_next_step" not in kinds(run(meeting(), (fu,), now=END + 10 * D))


# --- not_accepted --------------------------------------------------------------------------


def test_not_accepted_comes_accept_within_after_the_invite_appeared():
    fu = invite(seen_at=END + H)
    close = fu.seen_at + POLICY.accept_within
    before = run(meeting(), (fu,), now=close - S)
    assert (kinds(before), before.due_at) == ([], close)
    (nudge,) = run(meeting(), (fu,), now=close).nudges
    assert nudge.kind == "not_accepted"
    assert (nudge.window_name, nudge.window, nudge.window_closed_at) == (
        "accept_within",
        POLICY.accept_within,
        close,
    )


def test_not_accepted_waits_for_the_meeting_to_end():
    # Invited three days before the meeting: accept_within closed while it was upcoming.
    fu = invite(seen_at=START - 3 * D)
    m = meeting(tracked_from=START - 5 * D)
    upcoming = run(m, (fu,), now=END - S)
    assert (upcoming.state, kinds(upcoming), upcoming.due_at) == ("upcoming", [], END)
    (nudge,) = run(m, (fu,), now=END).nudges
    assert (nudge.kind, nudge.window_closed_at) == ("not_accepted", fu.seen_at + 2 * D)


def test_an_accepted_follow_up_never_nudges():
    fu = invite(responses={DANA: "accepted"})
    d = run(meeting(), (fu,), now=END + 30 * D, can_escalate=True)
    assert (kinds(d), d.due_at) == ([], None)


# --- follow_up_declined --------------------------------------------------------------------


def test_follow_up_declined_is_due_at_once():
    fu = invite(responses={DANA: "declined"})
    (nudge,) = run(meeting(), (fu,), now=END + 2 * D).nudges
    assert nudge.kind == "follow_up_declined"
    assert (nudge.window_name, nudge.window, nudge.window_closed_at) == (None, None, None)


def test_follow_up_declined_replaces_no_next_step():
    fu = invite(responses={DANA: "declined"})
    assert kinds(run(meeting(), (fu,), now=END + 10 * D)) == ["follow_up_declined"]


def test_the_declined_follow_up_reported_is_the_last_one_sent():
    old = invite("old", start=END + D, responses={DANA: "declined"}, seen_at=END + H)
    new = invite("new", start=END + 2 * D, responses={DANA: "declined"}, seen_at=END + 5 * H)
    assert run(meeting(), (new, old), now=END + 6 * H).declined == new


# --- registration: windows closed before tracking began -----------------------------------


@pytest.mark.parametrize(
    ("tracked_from", "nudges"),
    [
        (END + POLICY.invite_within + H, False),  # registered after the window closed
        (END + POLICY.invite_within, False),  # closing at the very moment of registration
        (END + POLICY.invite_within - S, True),  # closing just after registration
    ],
)
def test_no_next_step_only_for_windows_closing_after_tracking_began(tracked_from, nudges):
    d = run(meeting(tracked_from=tracked_from), now=END + 10 * D)
    assert kinds(d) == (["no_next_step"] if nudges else [])
    if not nudges:
        assert d.due_at is None


@pytest.mark.parametrize(
    ("tracked_from", "nudges"),
    [
        (END + H + POLICY.accept_within + H, False),
        (END + H + POLICY.accept_within, False),
        (END + H + POLICY.accept_within - S, True),
    ],
)
def test_not_accepted_only_for_windows_closing_after_tracking_began(tracked_from, nudges):
    fu = invite(seen_at=END + H)
    d = run(meeting(tracked_from=tracked_from), (fu,), now=END + 10 * D)
    assert kinds(d) == (["not_accepted"] if nudges else [])


def test_a_follow_up_declined_before_registration_does_not_nudge():
    fu = invite("fu", responses={DANA: "declined"})
    first = run(meeting(tracked_from=END + 3 * D), (fu,), now=END + 3 * D, baseline=True)
    assert (first.state, kinds(first), first.baseline_declined_id) == (
        "needs_next_step",
        [],
        "fu",
    )
    # Later evaluations remember it: still no nudge for that declined follow-up.
    m = meeting(tracked_from=END + 3 * D, baseline_declined_id=first.baseline_declined_id)
    later = run(m, (fu,), now=END + 5 * D)
    assert (kinds(later), later.due_at, later.baseline_declined_id) == ([], None, "fu")


def test_a_new_decline_after_registration_nudges():
    old = invite("old", start=END + D, responses={DANA: "declined"}, seen_at=END + H)
    new = invite("new", start=END + 2 * D, responses={DANA: "declined"}, seen_at=END + 4 * D)
    m = meeting(tracked_from=END + 3 * D, baseline_declined_id="old")
    d = run(m, (old, new), now=END + 4 * D)
    assert (kinds(d), d.declined) == (["follow_up_declined"], new)


def test_a_baseline_without_a_declined_follow_up_remembers_nothing():
    assert run(meeting(), now=END + H, baseline=True).baseline_declined_id is None
    fu = invite()
    assert run(meeting(), (fu,), now=END + H, baseline=True).baseline_declined_id is None


# --- snooze --------------------------------------------------------------------------------


def test_snooze_defers_a_nudge_to_the_end_of_the_snooze():
    close = END + POLICY.invite_within
    until = close + D
    m = meeting(snoozed_until=until)
    at_close = run(m, now=close)
    assert (kinds(at_close), at_close.due_at) == ([], until)
    assert kinds(run(m, now=until - S)) == []
    assert kinds(run(m, now=until)) == ["no_next_step"]


def test_snooze_defers_follow_up_declined_too():
    fu = invite(responses={DANA: "declined"})
    until = END + 3 * D
    m = meeting(snoozed_until=until)
    d = run(m, (fu,), now=END + D)
    assert (kinds(d), d.due_at) == ([], until)
    assert kinds(run(m, (fu,), now=until)) == ["follow_up_declined"]


def test_a_snooze_that_ends_before_the_window_closes_changes_nothing():
    close = END + POLICY.invite_within
    m = meeting(snoozed_until=END + H)
    d = run(m, now=END + H + M)
    assert d.due_at == close
    assert kinds(run(m, now=close)) == ["no_next_step"]


# --- escalation ----------------------------------------------------------------------------

NUDGED = END + POLICY.invite_within  # when no_next_step went to the rep


def unanswered(state: str = "needs_next_step", kind: str = "no_next_step") -> MeetingFacts:
    return meeting(produced=frozenset({kind}), last_nudge_at=NUDGED, last_nudge_state=state)


def test_escalation_comes_escalate_after_the_last_nudge_when_the_state_did_not_move():
    close = NUDGED + POLICY.escalate_after
    before = run(unanswered(), now=close - S, can_escalate=True, last_nudge_kind="no_next_step")
    assert (kinds(before), before.due_at) == ([], close)
    (nudge,) = run(
        unanswered(), now=close, can_escalate=True, last_nudge_kind="no_next_step"
    ).nudges
    assert nudge.kind == "escalation"
    assert (nudge.window_name, nudge.window, nudge.window_closed_at, nudge.escalated_kind) == (
        "escalate_after",
        POLICY.escalate_after,
        close,
        "no_next_step",
    )


def test_an_unanswered_not_accepted_escalates_while_still_invited():
    fu = invite(seen_at=END + H)
    nudged = fu.seen_at + POLICY.accept_within
    m = meeting(
        produced=frozenset({"not_accepted"}), last_nudge_at=nudged, last_nudge_state="invited"
    )
    d = run(
        m,
        (fu,),
        now=nudged + POLICY.escalate_after,
        can_escalate=True,
        last_nudge_kind="not_accepted",
    )
    assert [(n.kind, n.escalated_kind) for n in d.nudges] == [("escalation", "not_accepted")]


def test_no_escalation_without_a_manager():
    d = run(unanswered(), now=NUDGED + 30 * D, can_escalate=False)
    assert (kinds(d), d.due_at) == ([], None)


def test_no_escalation_when_the_state_moved_since_the_nudge():
    # no_next_step went out, then a follow-up came: the rep answered the nudge.
    fu = invite(seen_at=NUDGED + H)
    d = run(unanswered(), (fu,), now=NUDGED + POLICY.escalate_after + H, can_escalate=True)
    assert d.state == "invited"
    assert "escalation" not in kinds(d)  # (not_accepted for the new invite may be due)


def test_no_escalation_once_secured():
    fu = invite(responses={DANA: "accepted"})
    d = run(unanswered(state="secured"), (fu,), now=NUDGED + 30 * D, can_escalate=True)
    assert (d.state, kinds(d)) == ("secured", [])


def test_no_escalation_without_a_nudge_first():
    m = meeting(produced=frozenset({"no_next_step"}))
    assert kinds(run(m, now=NUDGED + 30 * D, can_escalate=True)) == []


# --- each kind once ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "candidates"),
    [
        ("no_next_step", ()),
        ("not_accepted", (invite(),)),
        ("follow_up_declined", (invite(responses={DANA: "declined"}),)),
    ],
)
def test_a_produced_kind_is_not_due_again(kind, candidates):
    fresh = run(meeting(), candidates, now=END + 10 * D)
    assert kinds(fresh) == [kind]
    again = run(meeting(produced=frozenset({kind})), candidates, now=END + 10 * D)
    assert (kinds(again), again.due_at) == ([], None)


def test_an_escalation_is_not_due_again():
    m = meeting(
        produced=frozenset({"no_next_step", "escalation"}),
        last_nudge_at=NUDGED,
        last_nudge_state="needs_next_step",
    )
    d = run(m, now=NUDGED + 30 * D, can_escalate=True)
    assert (kinds(d), d.due_at) == ([], None)


# --- properties over many meetings ---------------------------------------------------------

ANSWERS = ("accepted", "declined", "tentative", "needs_action")
STATES = ("upcoming", "needs_next_step", "invited", "secured", "waived")
KINDS = ("no_next_step", "not_accepted", "follow_up_declined", "escalation")


def minutes(lo: timedelta, hi: timedelta) -> st.SearchStrategy[timedelta]:
    return st.integers(int(lo / M), int(hi / M)).map(lambda n: n * M)


candidates = st.lists(
    st.builds(
        lambda eid, start, answers, seen: invite(
            eid, start=END + start, responses=answers, seen_at=START + seen
        ),
        st.sampled_from(["a", "b", "c", "d", "e"]),
        minutes(-D, POLICY.horizon + D),
        st.dictionaries(st.sampled_from([DANA, BOB]), st.sampled_from(ANSWERS), min_size=1),
        minutes(-5 * D, 20 * D),
    ),
    max_size=4,
    unique_by=lambda c: c.event_id,
)
facts = st.builds(
    lambda tracked, waived, snooze, nudged, nudged_state, produced, baseline_id: meeting(
        tracked_from=START + tracked,
        waived=waived,
        snoozed_until=None if snooze is None else START + snooze,
        last_nudge_at=None if nudged is None else START + nudged,
        last_nudge_state=nudged_state if nudged is not None else None,
        produced=frozenset(produced),
        baseline_declined_id=baseline_id,
    ),
    minutes(-30 * D, 30 * D),
    st.booleans(),
    st.none() | minutes(-D, 30 * D),
    st.none() | minutes(0 * D, 30 * D),
    st.sampled_from(STATES),
    st.sets(st.sampled_from(KINDS)),
    st.none() | st.sampled_from(["a", "b", "c"]),
)
situations = st.fixed_dictionaries(
    {
        "m": facts,
        "candidates": candidates.map(tuple),
        "now": minutes(-D, 40 * D).map(lambda t: START + t),
        "can_escalate": st.booleans(),
        "baseline": st.booleans(),
        "last_nudge_kind": st.none() | st.sampled_from(KINDS[:3]),
    }
)


def decide_in(s: dict) -> Decision:
    return run(
        s["m"],
        s["candidates"],
        now=s["now"],
        can_escalate=s["can_escalate"],
        baseline=s["baseline"],
        last_nudge_kind=s["last_nudge_kind"],
    )


def expected_state(s: dict) -> str:
    """The contract's state table, restated."""
    m, now = s["m"], s["now"]
    if m.waived:
        return "waived"
    if now < m.end:
        return "upcoming"
    live = [
        c
        for c in s["candidates"]
        if m.end <= c.start <= m.end + POLICY.horizon
        and any(r != "declined" for r in c.responses.values())
    ]
    if not live:
        return "needs_next_step"
    first = min(live, key=lambda c: (c.start, c.event_id))
    return "secured" if "accepted" in first.responses.values() else "invited"


@RULE
@given(situations)
def test_the_state_is_a_function_of_the_candidates_responses(s):
    assert decide_in(s).state == expected_state(s)


@RULE
@given(situations)
def test_due_at_is_never_in_the_past_of_now(s):
    d = decide_in(s)
    assert d.due_at is None or d.due_at > s["now"]


@RULE
@given(situations)
def test_nothing_happens_before_due_at_and_something_happens_at_it(s):
    d = decide_in(s)
    if d.nudges or d.due_at is None:
        return
    just_before = decide_in({**s, "now": max(s["now"], d.due_at - S)})
    assert (just_before.state, just_before.nudges) == (d.state, ())
    at = decide_in({**s, "now": d.due_at})
    assert at.nudges or at.state != d.state


@RULE
@given(situations)
def test_produced_kinds_are_never_due_again(s):
    due = {(n.kind, n.cycle, n.round) for n in decide_in(s).nudges}
    assert not due & s["m"].produced


@RULE
@given(situations)
def test_waived_and_secured_meetings_never_nudge(s):
    d = decide_in(s)
    if d.state in ("waived", "secured", "upcoming"):
        assert d.nudges == ()


@RULE
@given(situations)
def test_no_nudge_before_its_window_closes_or_its_snooze_ends(s):
    m, now = s["m"], s["now"]
    for nudge in decide_in(s).nudges:
        if nudge.window_closed_at is not None:
            assert nudge.window_closed_at <= now
        if m.snoozed_until is not None:
            assert m.snoozed_until <= now


@RULE
@given(situations)
def test_windows_closing_before_tracking_began_never_nudge(s):
    for nudge in decide_in(s).nudges:
        if nudge.kind in ("no_next_step", "not_accepted"):
            assert nudge.window_closed_at is not None
            assert nudge.window_closed_at > s["m"].tracked_from


@RULE
@given(situations)
def test_escalation_only_with_a_manager_and_an_unmoved_state(s):
    d = decide_in(s)
    if "escalation" in kinds(d):
        assert s["can_escalate"]
        assert s["m"].last_nudge_state == d.state
        assert d.state in ("needs_next_step", "invited")


@RULE
@given(situations)
def test_at_most_one_nudge_of_each_kind(s):
    found = kinds(decide_in(s))
    assert len(found) == len(set(found))


# --- cycles and rounds (CONTRACT.md "The rule holds every time") -------------------------------


def test_back_to_needs_next_step_opens_a_cycle_counted_from_that_moment():
    gone = END + 2 * D  # the secured follow-up was cancelled then: no candidate left
    m = meeting(
        previous_state="secured",
        produced=frozenset({"no_next_step"}),
        follow_up_key="fu@x",
        invite_round=1,
    )
    d = decide(m, (), POLICY, gone, can_escalate=False)
    assert (d.state, d.cycle, d.cycle_started_at, d.restarted) == ("needs_next_step", 1, gone, True)
    assert d.due_at == gone + POLICY.invite_within
    later = replace(
        m, previous_state="needs_next_step", cycle=d.cycle, cycle_started_at=d.cycle_started_at
    )
    (nudge,) = decide(later, (), POLICY, gone + POLICY.invite_within, can_escalate=False).nudges
    assert (nudge.kind, nudge.cycle, nudge.window_closed_at) == (
        "no_next_step",
        1,
        gone + POLICY.invite_within,
    )


def test_an_older_declined_invite_is_not_declined_again_in_a_new_cycle():
    old = invite("old", responses={DANA: "declined"}, start=END + D)
    m = meeting(previous_state="secured", follow_up_key="new@x", invite_round=2, cycle=1)
    d = decide(m, (old,), POLICY, END + 3 * D, can_escalate=False)
    assert (d.state, d.cycle) == ("needs_next_step", 2)
    assert kinds(d) == []  # the cancelled one was not declined: no_next_step comes later
    assert d.due_at == END + 3 * D + POLICY.invite_within


def test_a_move_is_a_new_round_a_replay_is_not():
    fu = invite()
    m = known(meeting(previous_state="invited"), (fu,))
    same = decide(m, (fu,), POLICY, END + H, can_escalate=False)
    assert (same.invite_round, same.restarted) == (1, False)
    moved = replace(fu, start=fu.start + D, end=fu.end + D)
    d = decide(m, (moved,), POLICY, END + 3 * D, can_escalate=False)
    assert (d.invite_round, d.accept_from, d.restarted) == (2, END + 3 * D, True)
    assert d.due_at == END + 3 * D + POLICY.accept_within
    (nudge,) = decide(
        replace(m, invite_round=2, follow_up_key=d.follow_up_key, accept_from=d.accept_from),
        (moved,),
        POLICY,
        END + 5 * D,
        can_escalate=False,
    ).nudges
    assert (nudge.kind, nudge.cycle, nudge.round) == ("not_accepted", 0, 2)
