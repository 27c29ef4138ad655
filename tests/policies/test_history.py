"""policies/history.py: the account-history diff of a page of calendar changes (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from connectors.base import Attendee
from policies.classify import EventFacts
from policies.history import diff
from policies.vocabulary import ActorSide, HistoryKind

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
H, D = timedelta(hours=1), timedelta(days=1)
REP, DANA, BOB = "anne@seller.io", "dana@acme.com", "bob@globex.com"


def facts(start: datetime = NOW + D, *, organizer: str = REP, **people: str) -> EventFacts:
    """An event on the rep's calendar; ``people`` maps local parts @acme.com to responses."""
    guests = {f"{k}@acme.com": v for k, v in people.items()} or {DANA: "needs_action"}
    return EventFacts(
        event_id="e1",
        title="Acme review",
        start=start,
        end=start + H,
        all_day=False,
        status="confirmed",
        event_type="default",
        rep_response="accepted",
        attendees=(
            Attendee(email=REP, response="accepted", is_organizer=organizer == REP),
            *(Attendee(email=e, response=r) for e, r in guests.items()),  # type: ignore[arg-type]
        ),
        seen_at=NOW,
        organizer_email=organizer,
    )


def run(old=None, changed=(), gone=(), *, initial=False, now=NOW):  # type: ignore[no-untyped-def]
    return diff(
        old=old or {},
        changed=list(changed),
        gone=list(gone),
        internal=("seller.io",),
        rep_email=REP,
        now=now,
        initial=initial,
    )


def test_a_new_event_is_seen_by_each_account_on_it():
    ev = replace(
        facts(),
        attendees=(*facts().attendees, Attendee(email=BOB, response="accepted")),
    )
    entries = run(changed=[ev])
    assert sorted((e.account, e.kind) for e in entries) == [
        ("acme.com", HistoryKind.SEEN),
        ("globex.com", HistoryKind.SEEN),
    ]
    assert all(e.at == NOW and not e.cancelled for e in entries)


def test_an_internal_only_or_all_day_event_makes_no_history():
    internal = replace(facts(), attendees=(Attendee(email="ops@seller.io"),))
    all_day = replace(facts(), all_day=True)
    assert run(changed=[internal, all_day]) == []


def test_the_first_full_sync_dates_the_past_as_it_was():
    created = NOW - 20 * D
    ev = replace(facts(NOW - 10 * D), created=created)
    (seen,) = run(changed=[ev], initial=True)
    assert seen.kind == HistoryKind.SEEN and seen.at == created


def test_an_instance_moved_before_we_watched_is_recorded_as_moved():
    ev = replace(facts(NOW + 3 * D), original_start=NOW + 2 * D, series_id="s1")
    seen, moved = run(changed=[ev])
    assert moved.kind == HistoryKind.MOVED and moved.old_start == NOW + 2 * D
    assert moved.series_id == "s1" and moved.actor_side == ActorSide.INTERNAL


def test_a_move_by_the_account_a_response_and_a_new_attendee():
    before = facts(dana="needs_action", lee="accepted")
    after = replace(
        facts(NOW + 2 * D, organizer=DANA, dana="accepted", lee="accepted", kim="needs_action"),
    )
    entries = run(old={"e1": before}, changed=[after])
    kinds = [(e.kind, e.actor_side) for e in entries]
    # The answer first: one sync may bring "can we move this?" and the move it asked for.
    assert kinds == [
        (HistoryKind.RESPONSE, ActorSide.ACCOUNT),
        (HistoryKind.MOVED, ActorSide.ACCOUNT),
        (HistoryKind.ATTENDEES, None),
    ]
    answered, moved, people = entries
    assert moved.old_start == NOW + D and moved.start == NOW + 2 * D
    assert people.detail == {"added": ["kim@acme.com"], "removed": []}
    assert answered.actor == DANA and answered.detail == {"from": "needs_action", "to": "accepted"}


def test_a_cancellation_is_recorded_once():
    before = facts()
    cancelled = replace(facts(), status="cancelled")
    (entry,) = run(old={"e1": before}, changed=[cancelled])
    assert entry.kind == HistoryKind.CANCELLED and entry.cancelled
    assert run(old={"e1": cancelled}, changed=[cancelled]) == []


def test_a_future_event_gone_is_cancelled_a_past_one_forgotten():
    future, past = facts(NOW + D), facts(NOW - 2 * D)
    (entry,) = run(gone=[future])
    assert entry.kind == HistoryKind.CANCELLED and entry.at == NOW
    assert run(gone=[past]) == []
