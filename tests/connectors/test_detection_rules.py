"""The two detection rules the connectors used to disagree on, through both emulators.

- The organiser is an attendee for every rule, listed or not: a prospect who booked
  through their own scheduling tool (which leaves the organiser out of the attendee list)
  is tracked on Google as on Outlook.
- Free/busy status decides nothing: an Outlook event shown as away (``showAs: oof``) with
  an external attendee — an on-site workshop — is a meeting; only the provider's own
  out-of-office entries (Google ``eventType: outOfOffice``, an Outlook block with nobody
  but the rep) are not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import Attendee, CalendarEvent, CalendarRef
from connectors.google.connector import GoogleConnector
from connectors.microsoft import MicrosoftConnector
from policies.classify import EventFacts, classify, follow_up_responses
from tests.emulators.google import fixtures
from tests.emulators.google.emulator import GoogleEmulator
from tests.emulators.microsoft.harness import (
    CertPair,
    RunningEmulator,
    generate_self_signed_cert,
    run_emulator,
    trust_env,
)

google_connector = fixtures.google_connector
google_emulator = fixtures.google_emulator
google_env = fixtures.google_env

G_REP = fixtures.REP  # rep@corp.test
M_REP = "rep@contoso.com"
T0 = (datetime.now(UTC) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
SINCE = T0 - timedelta(days=14)


def prospect(ev: CalendarEvent, internal: str, rep: str):  # type: ignore[no-untyped-def]
    return classify(EventFacts.of_event(ev, T0), [internal], rep)


async def google_events(conn: GoogleConnector) -> dict[str, CalendarEvent]:
    cal = CalendarRef(rep_id="r1", email=G_REP)
    page = await conn.sync_page(cal, None, since=SINCE)
    events = list(page.events)
    while not page.last_page:
        page = await conn.sync_page(cal, page.cursor, since=SINCE)
        events += page.events
    return {e.title: e for e in events}


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> CertPair:
    return generate_self_signed_cert(tmp_path_factory.mktemp("ms-cert"))


@pytest.fixture
def ms(cert: CertPair, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningEmulator]:
    for key, value in trust_env(cert).items():
        monkeypatch.setenv(key, value)
    with run_emulator(cert) as running:
        running.emulator.add_user(M_REP, display_name="Rita Rep")
        yield running


@pytest.fixture
async def ms_connector(ms: RunningEmulator) -> AsyncIterator[MicrosoftConnector]:
    conn = MicrosoftConnector(
        ms.tenant_id,
        ms.client_id,
        ms.client_secret,
        authority=ms.authority,
        graph_root=ms.graph_root,
        backoff_base=0.001,
        backoff_cap=0.005,
        timeout=10.0,
    )
    yield conn
    await conn.aclose()


async def ms_events(conn: MicrosoftConnector) -> dict[str, CalendarEvent]:
    cal = CalendarRef(rep_id="r1", email=M_REP)
    page = await conn.sync_page(cal, None, since=SINCE)
    events = list(page.events)
    while not page.last_page:
        page = await conn.sync_page(cal, page.cursor, since=SINCE)
        events += page.events
    return {e.title: e for e in events}


# --- the organiser is an attendee ------------------------------------------------------------


async def test_google_prospect_booked_through_their_own_tool_is_tracked(
    google_connector: GoogleConnector, google_emulator: GoogleEmulator
) -> None:
    # The prospect's scheduling tool: organiser dana@acme.test, only the rep listed.
    google_emulator.create_event(
        G_REP,
        start=T0,
        end=T0 + timedelta(minutes=30),
        summary="Intro (booked)",
        organizer="dana@acme.test",
        organizer_listed=False,
    )
    # Their follow-up, booked the same way, counts as the follow-up.
    google_emulator.create_event(
        G_REP,
        start=T0 + timedelta(days=2),
        end=T0 + timedelta(days=2, minutes=30),
        summary="Follow-up (booked)",
        organizer="dana@acme.test",
        organizer_listed=False,
    )
    events = await google_events(google_connector)
    intro = events["Intro (booked)"]
    assert "dana@acme.test" not in [a.email for a in intro.attendees if not a.is_organizer]
    organiser = next(a for a in intro.attendees if a.email == "dana@acme.test")
    assert organiser.is_organizer and organiser.response == "accepted"
    meeting = prospect(intro, "corp.test", G_REP)
    assert meeting is not None and meeting.account == "acme.test"
    assert meeting.external_attendees == ("dana@acme.test",)
    follow_up = EventFacts.of_event(events["Follow-up (booked)"], T0)
    assert follow_up_responses(follow_up, "acme.test", ["corp.test"], G_REP) == {
        "dana@acme.test": "accepted"
    }


async def test_outlook_prospect_organiser_counts_as_on_google(
    ms: RunningEmulator, ms_connector: MicrosoftConnector
) -> None:
    ms.emulator.add_event(
        M_REP,
        subject="Intro (booked)",
        start=T0,
        end=T0 + timedelta(minutes=30),
        organizer="dana@fabrikam.com",
        attendees=[(M_REP, "required", "none")],
    )
    intro = (await ms_events(ms_connector))["Intro (booked)"]
    meeting = prospect(intro, "contoso.com", M_REP)
    assert meeting is not None and meeting.account == "fabrikam.com"
    assert meeting.external_attendees == ("dana@fabrikam.com",)


def test_a_provider_leaving_the_organiser_out_still_has_them() -> None:
    ev = CalendarEvent(
        event_id="e1",
        start=T0,
        end=T0 + timedelta(hours=1),
        organizer_email="Dana@Acme.test",
        rep_response="needs_action",
        attendees=(Attendee(email=G_REP),),
    )
    assert [(a.email, a.is_organizer, a.response) for a in ev.attendees] == [
        ("dana@acme.test", True, "accepted"),
        (G_REP, False, "needs_action"),
    ]
    # A personal entry (nobody listed) stays without attendees.
    alone = CalendarEvent(
        event_id="e2", start=T0, end=T0 + timedelta(hours=1), organizer_email=G_REP
    )
    assert alone.attendees == ()


# --- free/busy decides nothing -----------------------------------------------------------------


async def test_outlook_away_event_with_a_prospect_is_a_meeting(
    ms: RunningEmulator, ms_connector: MicrosoftConnector
) -> None:
    em = ms.emulator
    em.add_event(
        M_REP,
        subject="On-site workshop",
        start=T0,
        end=T0 + timedelta(hours=6),
        show_as="oof",
        attendees=[("dana@fabrikam.com", "required", "accepted")],
    )
    em.add_event(
        M_REP,
        subject="Follow-up visit",
        start=T0 + timedelta(days=3),
        end=T0 + timedelta(days=3, hours=4),
        show_as="oof",
        attendees=[("dana@fabrikam.com", "required", "none")],
    )
    em.add_event(M_REP, subject="Vacation", start=T0, end=T0 + timedelta(hours=8), show_as="oof")
    events = await ms_events(ms_connector)
    workshop, visit = events["On-site workshop"], events["Follow-up visit"]
    assert workshop.event_type == "default" and visit.event_type == "default"
    meeting = prospect(workshop, "contoso.com", M_REP)
    assert meeting is not None and meeting.account == "fabrikam.com"
    assert follow_up_responses(
        EventFacts.of_event(visit, T0), "fabrikam.com", ["contoso.com"], M_REP
    ) == {"dana@fabrikam.com": "needs_action"}
    # Outlook's own out-of-office block (nobody but the rep) is not a meeting.
    assert events["Vacation"].event_type == "out_of_office"
    assert prospect(events["Vacation"], "contoso.com", M_REP) is None


async def test_google_out_of_office_entry_is_not_a_meeting_even_with_guests(
    google_connector: GoogleConnector, google_emulator: GoogleEmulator
) -> None:
    google_emulator.create_event(
        G_REP,
        start=T0,
        end=T0 + timedelta(hours=8),
        summary="OOO",
        event_type="outOfOffice",
    )
    google_emulator.create_event(
        G_REP,
        start=T0,
        end=T0 + timedelta(hours=2),
        summary="Workshop",
        attendees=["dana@acme.test"],
        transparency="transparent",
    )
    events = await google_events(google_connector)
    assert events["OOO"].event_type == "out_of_office"
    assert prospect(events["OOO"], "corp.test", G_REP) is None
    workshop = prospect(events["Workshop"], "corp.test", G_REP)  # shown free: still a meeting
    assert workshop is not None and workshop.account == "acme.test"


# --- one meeting across calendars: the iCalUID ---------------------------------------------


async def test_outlook_copies_of_one_meeting_share_their_ical_uid(
    ms: RunningEmulator, ms_connector: MicrosoftConnector
) -> None:
    from connectors.base import NewEvent

    ms.emulator.add_user("sam@contoso.com")
    created = await ms_connector.create_event(
        CalendarRef(rep_id="r1", email=M_REP),
        NewEvent(
            title="Fabrikam discovery",
            start=T0,
            end=T0 + timedelta(hours=1),
            attendees=("sam@contoso.com", "dana@fabrikam.com"),
            request_id="uid-test",
        ),
    )
    cal = CalendarRef(rep_id="r2", email="sam@contoso.com")
    page = await ms_connector.sync_page(cal, None, since=SINCE)
    (copy,) = [e for e in page.events if e.title == "Fabrikam discovery"]
    assert created.ical_uid and copy.ical_uid == created.ical_uid
    assert copy.event_id != created.event_id


def test_google_instances_of_a_series_are_told_apart_by_their_original_start() -> None:
    from connectors.google.connector import event_from_google

    def instance(day: int) -> dict:  # type: ignore[type-arg]
        start = f"2026-12-{day:02d}T10:00:00Z"
        return {
            "id": f"series_202612{day:02d}T100000Z",
            "iCalUID": "series@google.com",
            "recurringEventId": "series",
            "originalStartTime": {"dateTime": start},
            "start": {"dateTime": start},
            "end": {"dateTime": f"2026-12-{day:02d}T11:00:00Z"},
        }

    first, second = event_from_google(instance(7)), event_from_google(instance(14))
    assert first.ical_uid == "series@google.com#2026-12-07T10:00:00Z"
    assert second.ical_uid != first.ical_uid
    single = event_from_google({**instance(7), "recurringEventId": None})
    assert single.ical_uid == "series@google.com"
