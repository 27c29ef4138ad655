"""The five silent signals, read from an account's history: pure, ``now`` given."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from app.errors import PolicyError
from policies.loader import parse_policies
from policies.signals import (
    Contact,
    CrmSignal,
    HistoryEntry,
    SignalsPolicy,
    assess,
    worse,
)

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
D, H = timedelta(days=1), timedelta(hours=1)
P = SignalsPolicy()
DANA, BOB, LEE = "dana.smith@acme.com", "bob.jones@acme.com", "lee.wong@acme.com"
CONTACTS = (
    Contact(email=DANA, role="decision_maker", name="Dana Smith"),
    Contact(email=LEE, role="champion"),
    Contact(email=BOB, role="user"),
)


def seen(
    eid: str,
    start: datetime,
    people: dict[str, str] | None = None,
    *,
    title: str = "Acme weekly",
    at: datetime | None = None,
    series: str | None = None,
) -> HistoryEntry:
    return HistoryEntry(
        event_id=eid,
        kind="seen",
        at=at or start - 3 * D,
        start=start,
        end=start + H,
        title=title,
        series_id=series,
        attendees=people or {DANA: "accepted", BOB: "accepted"},
    )


def weekly(
    n: int, *, last: datetime, people: dict[str, str] | None = None, prefix: str = "w"
) -> list[HistoryEntry]:
    return [seen(f"{prefix}{i}", last - (n - 1 - i) * 7 * D, people) for i in range(n)]


def moved(e: HistoryEntry, to: datetime, at: datetime, side: str = "account") -> HistoryEntry:
    return HistoryEntry(
        event_id=e.event_id,
        kind="moved",
        at=at,
        start=to,
        end=to + H,
        title=e.title,
        series_id=e.series_id,
        old_start=e.start,
        actor_side=side,
        attendees=e.attendees,
    )


def kinds(health) -> list[str]:  # type: ignore[no-untyped-def]
    return [s.kind for s, _ in health.signals]


def signal(health, kind: str):  # type: ignore[no-untyped-def]
    return next(s for s, _ in health.signals if s.kind == kind)


def test_a_healthy_busy_account_shows_no_signal():
    # Two meetings a week for five months, one of them moved a day later, an upcoming one booked.
    history = weekly(22, last=NOW - 2 * D) + weekly(22, last=NOW - 4 * D, prefix="x")
    history.append(seen("next", NOW + 5 * D))
    history.append(moved(history[-3], history[-3].start + D, NOW - 20 * D, side="internal"))
    health = assess(history, contacts=CONTACTS, renewal=date(2027, 1, 10), policy=P, now=NOW)
    assert kinds(health) == [] and health.score == 100 and health.level == "healthy"


def test_meetings_postponed_again_and_again():
    history = weekly(10, last=NOW - 7 * D)
    a, b = seen("a", NOW + 2 * D, at=NOW - 10 * D), seen("b", NOW + 9 * D, at=NOW - 10 * D)
    a1 = moved(a, NOW + 9 * D, NOW - 5 * D)
    a2 = moved(a1, NOW + 16 * D, NOW - 2 * D)
    b1 = moved(b, NOW + 23 * D, NOW - 1 * D)
    health = assess([*history, a, b, a1, a2, b1], contacts=CONTACTS, policy=P, now=NOW)
    s = signal(health, "meetings_postponed")
    assert s.evidence == ("a", "b")
    assert s.details["postponements"] == 3 and s.details["days_slipped"] == 28.0
    assert s.since == NOW - 5 * D
    assert "3 moves" in s.explanation and "28 days slipped" in s.explanation


def test_one_move_is_not_procrastination_but_customer_cancellations_count():
    history = weekly(10, last=NOW - 7 * D)
    a = seen("a", NOW + 2 * D, at=NOW - 10 * D)
    once = assess([*history, a, moved(a, NOW + 4 * D, NOW - D)], policy=P, now=NOW)
    assert "meetings_postponed" not in kinds(once)
    c = seen("c", NOW + 3 * D, at=NOW - 10 * D)
    cancel = HistoryEntry(
        event_id="c",
        kind="cancelled",
        at=NOW - D,
        start=c.start,
        end=c.end,
        actor_side="account",
        attendees=c.attendees,
        cancelled=True,
    )
    both = assess([*history, a, moved(a, NOW + 4 * D, NOW - D), c, cancel], policy=P, now=NOW)
    s = signal(both, "meetings_postponed")
    assert s.details["customer_cancellations"] == 1 and set(s.evidence) == {"a", "c"}


def test_a_recurring_review_pushed_past_its_period():
    reviews = [seen(f"r{i}", NOW - (8 - i) * 7 * D, series="review") for i in range(8)]
    nxt = seen("r8", NOW + 3 * D, series="review", at=NOW - 30 * D)
    pushed = moved(nxt, NOW + 11 * D, NOW - 2 * D)
    other = seen("r9", NOW + 10 * D, series="review", at=NOW - 30 * D)
    health = assess(
        [*reviews, nxt, other, pushed, moved(other, NOW + 12 * D, NOW - D)], policy=P, now=NOW
    )
    s = signal(health, "meetings_postponed")
    assert s.details["past_period"] == 1 and "recurring review" in s.explanation


def test_decision_makers_who_stop_coming():
    before = weekly(
        8, last=NOW - 28 * D, people={DANA: "accepted", LEE: "accepted", BOB: "accepted"}
    )
    after = weekly(3, last=NOW - 7 * D, people={BOB: "accepted", DANA: "declined"}, prefix="late")
    health = assess(before + after, contacts=CONTACTS, policy=P, now=NOW)
    s = signal(health, "decision_makers_absent")
    assert s.evidence == ("late0", "late1", "late2")
    assert s.details["absent"] == [DANA, LEE] and s.details["users_only"]
    assert "Dana Smith (decision maker)" in s.explanation and "declined" in s.explanation
    assert "only with user-level contacts" in s.explanation
    # Someone who never came is not "no longer coming".
    fresh = assess(after, contacts=CONTACTS, policy=P, now=NOW)
    assert "decision_makers_absent" not in kinds(fresh)


def test_cadence_decays_against_the_accounts_own_baseline():
    weekly_then_monthly = weekly(10, last=NOW - 70 * D) + [
        seen("m1", NOW - 49 * D),
        seen("m2", NOW - 21 * D),
    ]
    health = assess(weekly_then_monthly, policy=P, now=NOW)
    s = signal(health, "cadence_decay")
    assert s.details["baseline_days"] == 7.0 and s.details["ratio"] >= 3
    assert s.evidence[-1] == "m2" and "nothing is scheduled" in s.explanation
    # A monthly account meeting monthly is fine.
    monthly = [seen(f"q{i}", NOW - (10 - i) * 28 * D) for i in range(10)]
    assert "cadence_decay" not in kinds(assess(monthly, policy=P, now=NOW))
    # Silence alone: weekly, then nothing for a month.
    silent = assess(weekly(10, last=NOW - 30 * D), policy=P, now=NOW)
    assert signal(silent, "cadence_decay").since == NOW - 30 * D


def test_follow_ups_declined_or_left_unanswered_more_than_usual():
    history = weekly(10, last=NOW - 100 * D)
    late = [
        seen("d1", NOW - 20 * D, {DANA: "declined", BOB: "declined"}, at=NOW - 30 * D),
        seen("d2", NOW - 10 * D, {DANA: "needs_action"}, at=NOW - 15 * D),
        seen("d3", NOW + 5 * D, {DANA: "tentative"}, at=NOW - 5 * D),
        seen("ok", NOW - 3 * D, at=NOW - 6 * D),
    ]
    health = assess(history + late, policy=P, now=NOW)
    s = signal(health, "follow_ups_declined")
    assert s.evidence == ("d1", "d2", "d3")
    assert s.details == {
        "declined": 1,
        "unanswered": 1,
        "tentative": 1,
        "rate": 0.75,
        "baseline_rate": 0.0,
    }


def test_expansion_refused_before_the_renewal():
    history = weekly(10, last=NOW - 7 * D)
    up = seen("up", NOW + 5 * D, title="Upsell: additional seats", at=NOW - 10 * D)
    pushed = moved(up, NOW + 50 * D, NOW - D)
    health = assess([*history, up, pushed], renewal=(NOW + 30 * D).date(), policy=P, now=NOW)
    s = signal(health, "expansion_refused")
    assert s.evidence == ("up",) and "pushed past the renewal" in s.explanation
    declined = seen("exp", NOW - 5 * D, {DANA: "declined"}, title="Expansion review")
    assert (
        "declined"
        in signal(assess([*history, declined], policy=P, now=NOW), "expansion_refused").explanation
    )


def test_crm_signals_and_the_renewal_make_the_score():
    history = weekly(10, last=NOW - 7 * D)
    crm = [
        CrmSignal(kind="small_talk_gone", occurred_at=NOW - 3 * D, note="short answers"),
        CrmSignal(kind="feature_requests_stopped", occurred_at=NOW - 200 * D),
    ]  # too old
    far = assess(history, crm=crm, renewal=date(2027, 10, 1), policy=P, now=NOW)
    assert kinds(far) == ["small_talk_gone"] and far.score == 90 and far.level == "healthy"
    s = signal(far, "small_talk_gone")
    assert s.evidence == ((NOW - 3 * D).date().isoformat(),) and "short answers" in s.explanation
    near = assess(history, crm=crm, renewal=(NOW + 20 * D).date(), policy=P, now=NOW)
    assert near.renewal_near and near.score == 85  # the same signal weighs 1.5× near the renewal


def test_levels_from_thresholds():
    before = weekly(
        8, last=NOW - 28 * D, people={DANA: "accepted", LEE: "accepted", BOB: "accepted"}
    )
    after = weekly(3, last=NOW - 7 * D, people={BOB: "accepted"}, prefix="late")
    health = assess(before + after, contacts=CONTACTS, policy=P, now=NOW)
    assert health.score == 35 * 0 + 100 - 35 and health.level == "watch"
    near = assess(
        before + after, contacts=CONTACTS, renewal=(NOW + 10 * D).date(), policy=P, now=NOW
    )
    assert near.score == 48 and near.level == "at_risk"
    assert worse("at_risk", "watch") and worse("watch", None) and not worse("healthy", "watch")


def test_policy_file_account_signals_section():
    base = "policies:\n  - {name: p, invite_within: PT2H, accept_within: P2D, horizon: P14D, follow_up_duration: PT15M, escalate_after: P3D}\n"
    ok = parse_policies(
        base
        + "account_signals:\n  weights: {cadence_decay: 40}\n  thresholds: {watch: 80, at_risk: 40}\n  retention: P365D\n"
    )
    sig = ok.account_signals
    assert sig.weights["cadence_decay"] == 40 and sig.weights["meetings_postponed"] == 25
    assert sig.watch_below == 80 and sig.retention == timedelta(days=365)
    assert parse_policies(base).account_signals == SignalsPolicy()
    for section, message in [
        ("account_signals:\n  colour: red\n", "team.yaml: account_signals.colour: unknown key"),
        (
            "account_signals:\n  weights: {vibes: 3}\n",
            "team.yaml: account_signals.weights.vibes: unknown signal kind",
        ),
        (
            "account_signals:\n  weights: {crm: -1}\n",
            "team.yaml: account_signals.weights.crm: must not be negative",
        ),
        (
            "account_signals:\n  retention: 18 months\n",
            "team.yaml: account_signals.retention: '18 months' is not an ISO 8601 duration",
        ),
        (
            "account_signals:\n  thresholds: {watch: 40, at_risk: 60}\n",
            "team.yaml: account_signals: thresholds",
        ),
        (
            "account_signals:\n  thresholds: {watch: 140}\n",
            "team.yaml: account_signals.thresholds.watch: must be a score",
        ),
        ("account_signals:\n  recent_meetings: 0\n", "team.yaml: account_signals.recent_meetings:"),
        ("account_signals: [1]\n", "team.yaml: account_signals: expected a mapping"),
    ]:
        with pytest.raises(PolicyError) as err:
            parse_policies(base + section, source="team.yaml")
        assert str(err.value).startswith(message), str(err.value)


def response(e: HistoryEntry, who: str, answer: str, at: datetime) -> HistoryEntry:
    return HistoryEntry(
        event_id=e.event_id,
        kind="response",
        at=at,
        start=e.start,
        end=e.end,
        title=e.title,
        series_id=e.series_id,
        actor=who,
        actor_side="account",
        attendees={**e.attendees, who: answer},
    )


def series(n: int, first: datetime, people: dict[str, str], sid: str = "s") -> list[HistoryEntry]:
    return [
        seen(f"{sid}{i}", first + i * 7 * D, people, series=sid, at=first - 30 * D)
        for i in range(n)
    ]


def test_an_accepted_series_is_not_an_executive_at_every_instance():
    everyone = {DANA: "accepted", BOB: "accepted"}
    weekly_series = series(20, NOW - 12 * 7 * D + H, everyone)  # 12 past instances, 8 ahead
    # Dana declined the last four instances one by one; the future ones still show the
    # answer she gave the whole series.
    declines = [response(e, DANA, "declined", e.start - 2 * D) for e in weekly_series[8:12]]
    health = assess(weekly_series + declines, contacts=CONTACTS, policy=P, now=NOW)
    s = signal(health, "decision_makers_absent")
    assert s.details["absent"] == [DANA]
    assert s.evidence[:4] == tuple(e.event_id for e in weekly_series[8:12])
    assert s.details["people"][0]["declined"] and s.details["people"][0]["missed"] == 4
    # Accepting the next instance itself is coming back.
    back = response(weekly_series[12], DANA, "accepted", NOW - H)
    again = assess([*weekly_series, *declines, back], contacts=CONTACTS, policy=P, now=NOW)
    assert "decision_makers_absent" not in kinds(again)


def test_who_stopped_appearing_on_the_instances_and_each_ones_rhythm():
    with_dana = {DANA: "accepted", BOB: "accepted"}
    past = series(8, NOW - 12 * 7 * D + H, with_dana)
    dropped = series(4, NOW - 4 * 7 * D + H, {BOB: "accepted"}, sid="t")  # off the list
    s = signal(
        assess(past + dropped, contacts=CONTACTS, policy=P, now=NOW), "decision_makers_absent"
    )
    assert s.details["people"][0]["dropped"] and not s.details["people"][0]["declined"]
    # An executive at the monthly review only, users at the weekly calls: not absent.
    calls = weekly(24, last=NOW - 2 * D, people={BOB: "accepted"})
    reviews = [seen(f"qbr{i}", NOW - 3 * D - i * 28 * D, with_dana) for i in range(6)]
    assert "decision_makers_absent" not in kinds(
        assess(calls + reviews, contacts=CONTACTS, policy=P, now=NOW)
    )
    # ... until the reviews go on without her.
    reviews = [
        seen(f"qbr{i}", NOW - 3 * D - i * 28 * D, with_dana if i > 2 else {BOB: "accepted"})
        for i in range(6)
    ]
    s = signal(
        assess(calls + reviews, contacts=CONTACTS, policy=P, now=NOW), "decision_makers_absent"
    )
    assert s.details["absent"] == [DANA]


def test_only_the_customers_moves_are_postponements():
    history = weekly(10, last=NOW - 7 * D)
    a, b = seen("a", NOW + 2 * D, at=NOW - 10 * D), seen("b", NOW + 9 * D, at=NOW - 10 * D)
    # The rep reschedules twice of their own accord: not procrastination.
    own = [
        moved(a, NOW + 9 * D, NOW - 5 * D, side="internal"),
        moved(b, NOW + 16 * D, NOW - 2 * D, side="internal"),
    ]
    assert "meetings_postponed" not in kinds(assess([*history, a, b, *own], policy=P, now=NOW))
    # The same moves after Dana declined (Google: "can we move this?") are hers.
    asks = [response(a, DANA, "declined", NOW - 6 * D), response(b, DANA, "tentative", NOW - 2 * D)]
    s = signal(assess([*history, a, b, *asks, *own], policy=P, now=NOW), "meetings_postponed")
    assert s.details["postponements"] == 2
    assert [m["asked_by"] for m in s.details["moves"]] == [DANA, DANA]
    # An answer older than the move before it asked for that one, not the next.
    a2 = moved(own[0], NOW + 20 * D, NOW - D, side="internal")
    s = signal(assess([*history, a, b, *asks, *own, a2], policy=P, now=NOW), "meetings_postponed")
    assert s.details["postponements"] == 2


def test_every_explanation_in_french_for_a_french_owner():
    history = weekly(10, last=NOW - 70 * D) + [seen("m1", NOW - 49 * D), seen("m2", NOW - 21 * D)]
    a = seen("a", NOW + 2 * D, at=NOW - 10 * D, title="Upsell: more seats")
    late = [
        seen("d1", NOW - 20 * D, {DANA: "declined", BOB: "declined"}, at=NOW - 30 * D),
        seen("d2", NOW - 10 * D, {DANA: "needs_action"}, at=NOW - 15 * D),
    ]
    entries = [*history, a, moved(a, NOW + 9 * D, NOW - 5 * D), *late]
    entries.append(moved(entries[-3], NOW + 40 * D, NOW - 2 * D))
    crm = [CrmSignal(kind="champion_left", occurred_at=NOW - D, note="Lee est parti")]
    fr = assess(
        entries,
        contacts=CONTACTS,
        renewal=(NOW + 30 * D).date(),
        crm=crm,
        policy=P,
        now=NOW,
        locale="fr",
    )
    texts = {s.kind: s.explanation for s, _ in fr.signals}
    assert texts["meetings_postponed"].startswith("Procrastination polie : 2 reports de réunion")
    assert texts["cadence_decay"].startswith("Les réunions avaient lieu tous les 7 jours")
    assert texts["follow_ups_declined"].endswith("contre 0 % d'habitude.")
    assert texts["expansion_refused"] == (
        "Discussions d'extension refusées : « Upsell: more seats » repoussée après le "
        "renouvellement."
    )
    assert texts["champion_left"] == (
        "Signalé par le CRM le 22 novembre 2026 : le champion est parti — Lee est parti."
    )
    english = ("meeting", "days", "the ", "declined", "Reported", "usually")
    assert not [t for t in texts.values() if any(w in t for w in english)], texts


def test_a_meeting_the_rep_cancels_after_the_customer_asked_is_the_customers():
    history = weekly(10, last=NOW - 7 * D)

    def cancel(e: HistoryEntry, at: datetime) -> HistoryEntry:
        return HistoryEntry(
            event_id=e.event_id, kind="cancelled", at=at, start=e.start, end=e.end,
            actor_side="internal", attendees=e.attendees, cancelled=True,
        )  # fmt: skip

    a, b = seen("a", NOW + 2 * D, at=NOW - 10 * D), seen("b", NOW + 9 * D, at=NOW - 10 * D)
    mine = [cancel(a, NOW - 3 * D), cancel(b, NOW - 2 * D)]
    assert "meetings_postponed" not in kinds(assess([*history, a, b, *mine], policy=P, now=NOW))
    asks = [response(a, DANA, "declined", NOW - 4 * D), response(b, DANA, "declined", NOW - 3 * D)]
    s = signal(assess([*history, a, b, *asks, *mine], policy=P, now=NOW), "meetings_postponed")
    assert s.details["customer_cancellations"] == 2


def test_one_holiday_gap_is_not_a_decay_and_the_baseline_is_the_year_before():
    # Weekly for a year; the two weeks before last were skipped (the holidays), then weekly
    # again: the last two intervals average 14 days, but the quarter's rhythm is weekly.
    year = weekly(52, last=NOW - 2 * D)
    gap = [e for e in year if e.event_id not in ("w49", "w48")]
    assert "cadence_decay" not in kinds(assess(gap, policy=P, now=NOW))
    # Weekly for nine months, then fortnightly for the quarter: the baseline is the weekly
    # year before the lookback, not the quarter itself.
    slower = weekly(40, last=NOW - 92 * D) + [
        seen(f"f{i}", NOW - 92 * D + (i + 1) * 14 * D) for i in range(6)
    ]
    s = signal(assess(slower, policy=P, now=NOW), "cadence_decay")
    assert s.details["baseline_days"] == 7.0 and s.details["current_days"] >= 14
