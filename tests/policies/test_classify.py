"""Which calendar events are prospect meetings, whose account they belong to, and which
later events can be their follow-up: ``policies.classify``, rule by rule.

Each test names one rule of CONTRACT.md "Prospect meetings and their state" (and the
README's "The rules"). The functions are pure; every input is built here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import Attendee
from policies.classify import (
    EventFacts,
    account_key,
    accounts_of,
    classify,
    follow_up_responses,
    is_internal,
)

# Property tests check rules, not speed: a loaded machine must not fail them.
RULE = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

INTERNAL = ("example.com",)
REP = "rep@example.com"
START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday
DANA, BOB = "dana.smith@acme.com", "bob.jones@acme.com"


def person(email: str, response: str = "needs_action", **kw: object) -> Attendee:
    return Attendee(email=email, response=response, **kw)  # type: ignore[arg-type]


def event(*attendees: Attendee, **kw: object) -> EventFacts:
    """A timed, confirmed, ordinary hour on the rep's calendar that the rep accepted."""
    fields: dict[str, object] = {
        "event_id": "ev1",
        "start": START,
        "end": START + timedelta(hours=1),
        "all_day": False,
        "status": "confirmed",
        "event_type": "default",
        "rep_response": "accepted",
        "attendees": (person(REP, "accepted"), *attendees),
        "seen_at": START - timedelta(days=1),
        "title": "Intro call",
    }
    fields.update(kw)
    return EventFacts(**fields)  # type: ignore[arg-type]


def account(ev: EventFacts) -> str | None:
    meeting = classify(ev, INTERNAL, REP)
    return None if meeting is None else meeting.account


# --- what is a prospect meeting ---------------------------------------------------------


def test_a_timed_event_with_an_external_person_is_a_prospect_meeting():
    meeting = classify(event(person(DANA)), INTERNAL, REP)
    assert meeting is not None
    assert meeting.account == "acme.com"
    assert meeting.external_attendees == (DANA,)


@pytest.mark.parametrize("status", ["confirmed", "tentative"])
def test_a_confirmed_or_tentative_event_counts(status):
    assert account(event(person(DANA), status=status)) == "acme.com"


def test_a_cancelled_event_is_not_a_meeting():
    assert classify(event(person(DANA), status="cancelled"), INTERNAL, REP) is None


def test_an_all_day_event_is_not_a_meeting():
    ev = event(person(DANA), all_day=True, end=START + timedelta(days=1))
    assert classify(ev, INTERNAL, REP) is None


@pytest.mark.parametrize("event_type", ["out_of_office", "focus_time", "working_location"])
def test_out_of_office_focus_time_and_working_location_are_not_meetings(event_type):
    assert classify(event(person(DANA), event_type=event_type), INTERNAL, REP) is None


def test_an_internal_only_event_is_not_a_prospect_meeting():
    ev = event(person("alice@example.com", "accepted"), person("bob@example.com"))
    assert classify(ev, INTERNAL, REP) is None


def test_an_event_with_no_attendee_but_the_rep_is_not_a_meeting():
    assert classify(event(), INTERNAL, REP) is None


def test_rooms_and_resources_are_not_people():
    room = person("board-room@acme.com", "accepted", is_resource=True)
    assert classify(event(room), INTERNAL, REP) is None
    # With a person beside it, the room is still left out of the external attendees.
    meeting = classify(event(room, person(DANA)), INTERNAL, REP)
    assert meeting is not None and meeting.external_attendees == (DANA,)


@pytest.mark.parametrize(
    "calendar",
    [
        "c_1889sbm0@resource.calendar.google.com",
        "team-x@group.calendar.google.com",
        "c_42@eu.resource.calendar.google.com",
    ],
)
def test_google_room_and_group_calendars_are_not_people_even_unflagged(calendar):
    assert classify(event(person(calendar, "accepted")), INTERNAL, REP) is None


def test_the_rep_declined_so_it_is_not_a_meeting():
    assert classify(event(person(DANA), rep_response="declined"), INTERNAL, REP) is None


@pytest.mark.parametrize("rep_response", ["accepted", "tentative", "needs_action"])
def test_the_rep_not_declining_keeps_it_a_meeting(rep_response):
    assert account(event(person(DANA), rep_response=rep_response)) == "acme.com"


def test_every_external_person_declined_so_it_is_not_a_meeting():
    ev = event(person(DANA, "declined"), person(BOB, "declined"), person("al@example.com"))
    assert classify(ev, INTERNAL, REP) is None


def test_one_external_person_still_coming_keeps_it_a_meeting():
    meeting = classify(event(person(DANA, "declined"), person(BOB, "tentative")), INTERNAL, REP)
    assert meeting is not None
    # Who declined is still one of the meeting's external attendees.
    assert meeting.external_attendees == (DANA, BOB)


def test_the_rep_is_never_an_external_attendee_even_with_no_internal_domain():
    ev = event(person(DANA))
    meeting = classify(ev, (), REP)
    assert meeting is not None and meeting.external_attendees == (DANA,)
    assert classify(event(), (), REP) is None


# --- internal or external ----------------------------------------------------------------


@pytest.mark.parametrize(
    "email", ["ops@eu.example.com", "x@a.b.example.com", "Alice@Sales.EXAMPLE.com"]
)
def test_sub_domains_of_an_internal_domain_are_internal(email):
    assert is_internal(email, INTERNAL)
    assert classify(event(person(email)), INTERNAL, REP) is None


@pytest.mark.parametrize(
    "email", ["dana@notexample.com", "dana@example.com.evil.io", "dana@example.co"]
)
def test_a_domain_that_merely_contains_an_internal_one_is_external(email):
    assert not is_internal(email, INTERNAL)
    assert classify(event(person(email)), INTERNAL, REP) is not None


def test_every_internal_domain_counts():
    assert classify(event(person("sam@example.org")), ("example.com", "example.org"), REP) is None


labels = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10)


@RULE
@given(sub=st.lists(labels, min_size=1, max_size=3), user=labels)
def test_any_sub_domain_of_an_internal_domain_is_internal(sub, user):
    assert is_internal(f"{user}@{'.'.join(sub)}.example.com", INTERNAL)


@RULE
@given(prefix=labels, user=labels)
def test_a_label_glued_to_an_internal_domain_is_external(prefix, user):
    assert not is_internal(f"{user}@{prefix}example.com", INTERNAL)


# --- case --------------------------------------------------------------------------------


def test_e_mail_addresses_compare_case_insensitively():
    meeting = classify(
        event(person("Dana.Smith@ACME.com"), person("Colleague@Example.COM"), person(REP.upper())),
        INTERNAL,
        "Rep@Example.com",
    )
    assert meeting is not None
    assert meeting.account == "acme.com"
    assert meeting.external_attendees == (DANA,)


def swap_case(text: str, mask: list[bool]) -> str:
    return "".join(c.upper() if up else c for c, up in zip(text, mask, strict=False))


@RULE
@given(mask=st.lists(st.booleans(), min_size=40, max_size=40))
def test_any_casing_of_the_addresses_classifies_the_same(mask):
    plain = event(person(DANA), person("lee@gmail.com", "declined"), person("al@eu.example.com"))
    shouted = event(
        person(swap_case(DANA, mask)),
        person(swap_case("lee@gmail.com", mask), "declined"),
        person(swap_case("al@eu.example.com", mask)),
    )
    assert classify(shouted, INTERNAL, swap_case(REP, mask)) == classify(plain, INTERNAL, REP)
    assert account_key(swap_case(DANA, mask)) == account_key(DANA) == "acme.com"


# --- the account -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email", ["dana@gmail.com", "dana@outlook.com", "dana@yahoo.com", "dana@hotmail.fr"]
)
def test_on_free_mail_the_person_is_the_account(email):
    assert account_key(email) == email
    assert account(event(person(email))) == email


def test_two_people_on_free_mail_are_two_accounts():
    ev = event(person("dana@gmail.com"), person("lee@gmail.com"))
    assert accounts_of(ev, INTERNAL, REP) == {"dana@gmail.com", "lee@gmail.com"}


def test_on_a_company_domain_the_domain_is_the_account():
    assert account_key("Dana.Smith@Acme.com") == "acme.com"


def test_the_account_is_the_external_party_most_present():
    ev = event(person("x@globex.com"), person(DANA), person(BOB))
    assert account(ev) == "acme.com"


def test_people_who_declined_do_not_make_the_account():
    ev = event(person(DANA, "declined"), person(BOB, "declined"), person("x@globex.com"))
    assert account(ev) == "globex.com"


def test_a_tie_goes_to_the_first_listed_party():
    assert account(event(person("x@globex.com"), person(DANA))) == "globex.com"
    assert account(event(person(DANA), person("x@globex.com"))) == "acme.com"


def test_external_attendees_are_listed_once_in_calendar_order():
    ev = event(person(BOB), person(DANA), person(BOB), person("x@globex.com"))
    meeting = classify(ev, INTERNAL, REP)
    assert meeting is not None
    assert meeting.external_attendees == (BOB, DANA, "x@globex.com")


def test_accounts_of_names_every_party_even_on_a_cancelled_event():
    ev = event(
        person(DANA, "declined"),
        person("x@globex.com"),
        person("lee@gmail.com"),
        person("al@example.com"),
        person("room@acme.com", is_resource=True),
        status="cancelled",
    )
    assert accounts_of(ev, INTERNAL, REP) == {"acme.com", "globex.com", "lee@gmail.com"}


# --- follow-up responses -----------------------------------------------------------------


def test_follow_up_responses_are_the_accounts_people_and_their_answers():
    ev = event(person(DANA, "declined"), person(BOB, "accepted"), person("x@globex.com"))
    assert follow_up_responses(ev, "acme.com", INTERNAL, REP) == {
        DANA: "declined",
        BOB: "accepted",
    }


def test_an_event_without_anyone_of_the_account_is_no_follow_up():
    ev = event(person("x@globex.com"), person("al@example.com"))
    assert follow_up_responses(ev, "acme.com", INTERNAL, REP) is None


@pytest.mark.parametrize(
    "change",
    [
        {"status": "cancelled"},
        {"all_day": True},
        {"event_type": "out_of_office"},
        {"event_type": "focus_time"},
        {"event_type": "working_location"},
    ],
)
def test_a_cancelled_all_day_or_out_of_office_event_is_no_follow_up(change):
    assert follow_up_responses(event(person(DANA), **change), "acme.com", INTERNAL, REP) is None


def test_a_follow_up_declined_by_everyone_still_reports_their_answers():
    # decide() turns "every one declined" into needs_next_step; classification keeps it.
    ev = event(person(DANA, "declined"))
    assert follow_up_responses(ev, "acme.com", INTERNAL, REP) == {DANA: "declined"}


def test_a_follow_up_the_rep_declined_still_reports_the_accounts_answers():
    ev = event(person(DANA, "accepted"), rep_response="declined")
    assert follow_up_responses(ev, "acme.com", INTERNAL, REP) == {DANA: "accepted"}


def test_on_free_mail_only_that_person_makes_a_follow_up():
    ev = event(person("lee@gmail.com", "accepted"))
    assert follow_up_responses(ev, "dana@gmail.com", INTERNAL, REP) is None
    assert follow_up_responses(ev, "lee@gmail.com", INTERNAL, REP) == {"lee@gmail.com": "accepted"}


def test_rooms_and_internal_people_are_not_among_the_follow_up_responses():
    ev = event(
        person(DANA),
        person("room@acme.com", "accepted", is_resource=True),
        person("al@eu.example.com", "accepted"),
    )
    assert follow_up_responses(ev, "acme.com", INTERNAL, REP) == {DANA: "needs_action"}


def test_follow_up_responses_compare_case_insensitively():
    ev = event(person("DANA.SMITH@Acme.COM", "tentative"))
    assert follow_up_responses(ev, "acme.com", INTERNAL, REP) == {DANA: "tentative"}


# --- properties over many events ---------------------------------------------------------

RESPONSES = ("accepted", "declined", "tentative", "needs_action")
ADDRESSES = (
    DANA,
    BOB,
    "x@globex.com",
    "lee@gmail.com",
    "al@example.com",
    "ops@eu.example.com",
    "room@acme.com",
    "c_1@resource.calendar.google.com",
    REP,
)
attendees = st.lists(
    st.builds(
        lambda email, response, resource: person(email, response, is_resource=resource),
        st.sampled_from(ADDRESSES),
        st.sampled_from(RESPONSES),
        st.booleans(),
    ),
    max_size=6,
    unique_by=lambda a: a.email,  # a calendar lists each address once
)


@RULE
@given(people=attendees, rep_response=st.sampled_from(RESPONSES))
def test_a_meeting_always_has_someone_external_coming(people, rep_response):
    ev = event(*people, rep_response=rep_response)
    meeting = classify(ev, INTERNAL, REP)
    coming = [
        a
        for a in people
        if a.response != "declined"
        and not a.is_resource
        and "calendar.google.com" not in a.email
        and not is_internal(a.email, INTERNAL)
    ]
    if rep_response == "declined" or not coming:
        assert meeting is None
        return
    assert meeting is not None
    assert meeting.account in {account_key(a.email) for a in coming}
    assert meeting.account in accounts_of(ev, INTERNAL, REP)
    for email in meeting.external_attendees:
        assert not is_internal(email, INTERNAL) and email != REP
    responses = follow_up_responses(ev, meeting.account, INTERNAL, REP)
    assert responses is not None
    assert any(r != "declined" for r in responses.values())


def test_the_organiser_is_an_attendee_listed_or_not() -> None:
    # CONTRACT v2: a prospect's own scheduling tool often leaves itself out of the list.
    ev = event(organizer_email="Pat@Globex.com")
    assert account(ev) == "globex.com"
    assert classify(ev, INTERNAL, REP).external_attendees == ("pat@globex.com",)  # type: ignore[union-attr]
    listed = event(person("pat@globex.com", "declined"), organizer_email="Pat@Globex.com")
    assert account(listed) is None, "a listed organiser keeps the answer it gave"
    assert account(event(organizer_email=REP)) is None, "the rep's own block"
