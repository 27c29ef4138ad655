"""Full and incremental sync (events.list + syncToken) against the emulator."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from connectors.base import CalendarEvent, CalendarRef, CursorExpired, SyncPage
from connectors.google.connector import (
    MINIMAL_BODY_SENTINEL,
    GoogleConnector,
    event_from_google,
)
from tests.emulators.google import fixtures, samples
from tests.emulators.google.emulator import SYNC_TOKEN_FORBIDDEN, GoogleEmulator
from tests.emulators.google.fixtures import REP

# pytest fixtures shared with the other Google test modules
google_connector = fixtures.google_connector
google_emulator = fixtures.google_emulator
google_env = fixtures.google_env

CAL = CalendarRef(rep_id="r1", email=REP)
T0 = (datetime.now(UTC) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
SINCE = T0 - timedelta(days=14)


class Mirror:
    """What the engine keeps: live events by id, from applied pages."""

    def __init__(self) -> None:
        self.events: dict[str, CalendarEvent] = {}
        self.cursor: str | None = None
        self._full: dict[str, CalendarEvent] | None = None
        self.pages: list[SyncPage] = []

    async def sync(self, connector: GoogleConnector) -> list[SyncPage]:
        """Run pages until the last one; return the pages of this round."""
        round_pages = []
        while True:
            page = await connector.sync_page(CAL, self.cursor, since=SINCE)
            round_pages.append(page)
            self.apply(page)
            if page.last_page:
                return round_pages

    def apply(self, page: SyncPage) -> None:
        self.pages.append(page)
        if page.full and self._full is None:
            self._full = {}
        target = self._full if page.full else self.events
        assert target is not None
        for event in page.events:
            if event.status == "cancelled":
                target.pop(event.event_id, None)
            else:
                target[event.event_id] = event
        self.cursor = page.cursor
        if page.full and page.last_page:
            self.events, self._full = self._full or {}, None


def _truth(emu: GoogleEmulator) -> set[str]:
    """Ids of the live single events/instances the emulator would list from SINCE."""
    cal = emu.calendars[REP]
    with emu._lock:
        items = emu._list_items(
            cal,
            single_events=True,
            show_deleted=False,
            since_seq=None,
            time_min=SINCE,
            time_max=None,
        )
    return {item["id"] for item in items}


def _meeting(emu: GoogleEmulator, hours: int, **kw) -> str:
    start = T0 + timedelta(hours=hours)
    kw.setdefault("attendees", ["buyer@prospect.test"])
    return emu.create_event(
        REP, start=start, end=start + timedelta(minutes=30), summary=f"m{hours}", **kw
    )


async def test_full_sync_pages_through_every_event(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    ids = {_meeting(google_emulator, h) for h in range(7)}
    old = google_emulator.create_event(
        REP, start=SINCE - timedelta(days=2), end=SINCE - timedelta(days=2, hours=-1), summary="old"
    )
    mirror = Mirror()
    pages = await mirror.sync(google_connector)
    assert [len(p.events) for p in pages] == [3, 3, 1]
    assert [p.last_page for p in pages] == [False, False, True]
    assert all(p.full for p in pages)
    assert set(mirror.events) == ids and old not in mirror.events
    assert json.loads(pages[-1].cursor)["mode"] == "incr"
    requests = google_emulator.requests_for("events.list")
    first = requests[0].query
    assert first["singleEvents"] == ["true"] and first["maxResults"] == ["3"]
    assert first["timeMin"] == [SINCE.isoformat().replace("+00:00", "Z")]
    # page requests repeat the original query
    for request in requests[1:]:
        assert request.query["timeMin"] == first["timeMin"] and "pageToken" in request.query


def _weekly(k: int) -> datetime:
    """Start of the k-th weekly occurrence: same Paris wall-clock time, DST or not."""
    return (T0.astimezone(ZoneInfo("Europe/Paris")) + timedelta(weeks=k)).astimezone(UTC)


async def test_recurring_series_is_expanded_with_exceptions(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    series = google_emulator.create_event(
        REP,
        start=T0,
        end=T0 + timedelta(hours=1),
        summary="weekly sync",
        time_zone="Europe/Paris",
        organizer="ae@prospect.test",
        attendees=[
            "ae@prospect.test",
            {
                "email": "room-1@resource.calendar.google.com",
                "resource": True,
                "responseStatus": "accepted",
            },
        ],
        recurrence=["RRULE:FREQ=WEEKLY;COUNT=4"],
    )
    moved = google_emulator.move_instance(
        REP,
        series,
        _weekly(1),
        _weekly(1) + timedelta(days=1),
        _weekly(1) + timedelta(days=1, hours=1),
    )
    google_emulator.cancel_instance(REP, series, _weekly(2))
    mirror = Mirror()
    await mirror.sync(google_connector)
    instances = sorted(mirror.events.values(), key=lambda e: e.start)
    assert len(instances) == 3
    assert all(e.recurring_event_id == series for e in instances)
    assert all(e.time_zone == "Europe/Paris" for e in instances)
    first, exception, last = instances
    assert first.original_start == first.start == T0
    assert exception.event_id == moved
    assert exception.original_start == _weekly(1)
    assert exception.start == _weekly(1) + timedelta(days=1)
    assert last.start == _weekly(3)
    assert first.organizer_email == "ae@prospect.test"
    assert first.rep_response == "needs_action"
    room = [a for a in first.attendees if a.is_resource]
    assert [a.email for a in room] == ["room-1@resource.calendar.google.com"]


async def test_all_day_and_special_event_types(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    day = T0.date() + timedelta(days=2)
    google_emulator.create_event(REP, start=day, end=day + timedelta(days=2), summary="offsite")
    google_emulator.create_event(
        REP, start=T0, end=T0 + timedelta(hours=2), summary="ooo", event_type="outOfOffice"
    )
    google_emulator.create_event(
        REP, start=T0 + timedelta(hours=3), end=T0 + timedelta(hours=4), event_type="focusTime"
    )
    google_emulator.create_event(
        REP, start=T0 + timedelta(hours=5), end=T0 + timedelta(hours=6), event_type="fromGmail"
    )
    mirror = Mirror()
    await mirror.sync(google_connector)
    by_title = {e.title: e for e in mirror.events.values()}
    offsite = by_title["offsite"]
    assert offsite.all_day
    assert offsite.start == datetime(day.year, day.month, day.day, tzinfo=UTC)
    assert offsite.end - offsite.start == timedelta(days=2)
    assert by_title["ooo"].event_type == "out_of_office"
    assert {e.event_type for e in mirror.events.values()} == {
        "default",
        "out_of_office",
        "focus_time",
    }


async def test_incremental_sync_reports_changes_cancellations_and_instances(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    emu = google_emulator
    keep = _meeting(emu, 1)
    gone = _meeting(emu, 2)
    moved = _meeting(emu, 3)
    answered = _meeting(emu, 4, organizer="ae@prospect.test", attendees=["ae@prospect.test"])
    series = emu.create_event(
        REP, start=T0, end=T0 + timedelta(hours=1), recurrence=["RRULE:FREQ=DAILY;COUNT=5"]
    )
    mirror = Mirror()
    await mirror.sync(google_connector)
    assert len(mirror.events) == 9

    emu.cancel_event(REP, gone)
    emu.move_event(REP, moved, T0 + timedelta(days=3), T0 + timedelta(days=3, minutes=30))
    emu.set_response(REP, answered, REP, "accepted")
    emu.set_response(REP, answered, "ae@prospect.test", "accepted")
    cancelled_instance = emu.cancel_instance(REP, series, T0 + timedelta(days=2))
    pages = await mirror.sync(google_connector)
    assert not any(p.full for p in pages)
    changed = {e.event_id: e for p in pages for e in p.events}
    assert keep not in changed
    assert set(changed) == {gone, moved, answered, cancelled_instance}
    # a deleted event comes back as a minimal body: id + status only
    assert changed[gone].status == "cancelled"
    assert changed[gone].start == MINIMAL_BODY_SENTINEL
    # a cancelled instance keeps its originalStartTime
    assert changed[cancelled_instance].status == "cancelled"
    assert changed[cancelled_instance].start == T0 + timedelta(days=2)
    assert changed[cancelled_instance].recurring_event_id == series
    # a move is an update with the new start
    assert changed[moved].start == T0 + timedelta(days=3)
    assert changed[answered].rep_response == "accepted"
    assert set(mirror.events) == _truth(emu)

    # cancelling the whole series cancels every instance
    emu.cancel_event(REP, series)
    pages = await mirror.sync(google_connector)
    assert {e.recurring_event_id for p in pages for e in p.events} == {series}
    assert set(mirror.events) == _truth(emu) == {keep, moved, answered}


async def test_incremental_pages_repeat_the_sync_token_and_never_send_forbidden_params(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    mirror = Mirror()
    await mirror.sync(google_connector)
    for h in range(8):
        _meeting(google_emulator, h)
    pages = await mirror.sync(google_connector)
    assert len(pages) == 3 and [p.last_page for p in pages] == [False, False, True]
    incremental = [r for r in google_emulator.requests_for("events.list") if "syncToken" in r.query]
    assert len(incremental) == 3
    token = incremental[0].query["syncToken"]
    for request in incremental:
        assert request.query["syncToken"] == token
        assert request.query["singleEvents"] == ["true"]
        assert not set(request.query) & set(SYNC_TOKEN_FORBIDDEN)
        assert "showDeleted" not in request.query
    assert set(mirror.events) == _truth(google_emulator)


async def test_empty_pages_with_a_next_page_token_are_followed(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    google_emulator.empty_first_page = True
    for h in range(2):
        _meeting(google_emulator, h)
    mirror = Mirror()
    pages = await mirror.sync(google_connector)
    assert pages[0].events == () and not pages[0].last_page
    assert len(mirror.events) == 2


async def test_expired_sync_token_then_clean_full_resync(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    emu = google_emulator
    a = _meeting(emu, 1)
    b = _meeting(emu, 2)
    mirror = Mirror()
    await mirror.sync(google_connector)
    emu.invalidate_sync_tokens(REP)
    emu.cancel_event(REP, a)  # changes made while the token is dead are not lost
    c = _meeting(emu, 3)
    with pytest.raises(CursorExpired) as info:
        await google_connector.sync_page(CAL, mirror.cursor, since=SINCE)
    assert info.value.__cause__ is not None
    mirror.cursor = None
    pages = await mirror.sync(google_connector)
    assert all(p.full for p in pages)
    assert set(mirror.events) == {b, c} == _truth(emu)
    # and the new token works
    _meeting(emu, 4)
    pages = await mirror.sync(google_connector)
    assert not pages[0].full and set(mirror.events) == _truth(emu)


async def test_expiry_in_the_middle_of_incremental_paging(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    mirror = Mirror()
    await mirror.sync(google_connector)
    for h in range(5):
        _meeting(google_emulator, h)
    page = await google_connector.sync_page(CAL, mirror.cursor, since=SINCE)
    assert not page.last_page
    google_emulator.invalidate_sync_tokens(REP)
    with pytest.raises(CursorExpired):
        await google_connector.sync_page(CAL, page.cursor, since=SINCE)


async def test_garbage_cursor_means_full_sync(google_connector: GoogleConnector) -> None:
    with pytest.raises(CursorExpired):
        await google_connector.sync_page(CAL, "not-a-cursor", since=SINCE)


# --- pure mapping of Google's own samples ---------------------------------------------


def test_libkgapi_events_pages_map() -> None:
    page1 = samples.http_json_body("libkgapi/events_fetch_page1_response.txt")
    page2 = samples.http_json_body("libkgapi/events_fetch_page2_response.txt")
    (meeting,) = [event_from_google(item) for item in page1["items"]]  # type: ignore[index]
    assert meeting.event_id == "3if6lf59tove1e037baa75l54t"
    assert meeting.start == datetime(2018, 4, 1, 8, 30, tzinfo=UTC)
    assert meeting.end == datetime(2018, 4, 1, 9, 30, tzinfo=UTC)
    assert meeting.time_zone == "Europe/Prague"
    assert meeting.organizer_email == "konqui@kde.test"
    assert meeting.rep_response == "accepted"  # the rep organizes it
    assert [a.response for a in meeting.attendees] == ["needs_action", "needs_action"]
    assert meeting.created == datetime(2018, 3, 30, 22, 28, 48, tzinfo=UTC)
    (sprint,) = [event_from_google(item) for item in page2["items"]]  # type: ignore[index]
    assert sprint.all_day and sprint.start == datetime(2018, 4, 20, tzinfo=UTC)
    assert sprint.end == datetime(2018, 4, 23, tzinfo=UTC)
    assert sprint.rep_response == "needs_action"  # attendee with self: true
    # organizer "MockAccount" has no '@': kept as the provider gave it
    assert sprint.organizer_email == "mockaccount"


def test_libkgapi_single_event_and_created_event_map() -> None:
    fetched = event_from_google(samples.http_json_body("libkgapi/event1_fetch_response.txt"))  # type: ignore[arg-type]
    created = event_from_google(samples.http_json_body("libkgapi/event1_create_response.txt"))  # type: ignore[arg-type]
    assert fetched.start == created.start == datetime(2018, 4, 1, 8, 30, tzinfo=UTC)
    assert created.title == "Cool Meeting about stuff"


@pytest.mark.parametrize(
    ("body", "start", "original"),
    [
        ({"id": "abc", "status": "cancelled"}, MINIMAL_BODY_SENTINEL, None),
        (
            {
                "id": "abc_20260105T090000Z",
                "status": "cancelled",
                "recurringEventId": "abc",
                "originalStartTime": {
                    "dateTime": "2026-01-05T10:00:00+01:00",
                    "timeZone": "Europe/Paris",
                },
            },
            datetime(2026, 1, 5, 9, tzinfo=UTC),
            datetime(2026, 1, 5, 9, tzinfo=UTC),
        ),
        (
            {
                "id": "abc_20260105",
                "status": "cancelled",
                "recurringEventId": "abc",
                "originalStartTime": {"date": "2026-01-05"},
            },
            datetime(2026, 1, 5, tzinfo=UTC),
            datetime(2026, 1, 5, tzinfo=UTC),
        ),
    ],
)
def test_minimal_cancelled_bodies(body: dict, start: datetime, original: datetime | None) -> None:
    event = event_from_google(body)
    assert event.status == "cancelled"
    assert event.start == event.end == start
    assert event.original_start == original


@pytest.mark.parametrize(
    ("google", "ours"),
    [
        ("default", "default"),
        ("outOfOffice", "out_of_office"),
        ("focusTime", "focus_time"),
        ("workingLocation", "working_location"),
        ("fromGmail", "default"),
        ("birthday", "default"),
        ("somethingNew", "default"),
    ],
)
def test_event_types(google: str, ours: str) -> None:
    body = {
        "id": "e1",
        "eventType": google,
        "start": {"date": date(2026, 1, 5).isoformat()},
        "end": {"date": date(2026, 1, 6).isoformat()},
    }
    assert event_from_google(body).event_type == ours


async def test_incremental_requests_match_the_documented_paged_example(
    google_connector: GoogleConnector, google_emulator: GoogleEmulator
) -> None:
    """guides/sync: page requests repeat maxResults, singleEvents and syncToken."""
    lines = [
        line for line in samples.text("events_list_incremental_paged.http").splitlines()
        if line.startswith("GET ")
    ]  # fmt: skip
    documented = [set(parse_qs(urlsplit(line.split()[1]).query)) for line in lines]
    mirror = Mirror()
    await mirror.sync(google_connector)
    for h in range(4):
        _meeting(google_emulator, h)
    await mirror.sync(google_connector)
    ours = [
        set(r.query) for r in google_emulator.requests_for("events.list") if "syncToken" in r.query
    ]
    assert ours[:2] == documented


async def test_private_and_confidential_events_carry_the_private_flag(
    google_connector: GoogleConnector, google_emulator: GoogleEmulator
) -> None:
    marked = {
        visibility: _meeting(google_emulator, n, visibility=visibility)
        for n, visibility in enumerate(("private", "confidential", "public", "default", None))
    }
    mirror = Mirror()
    await mirror.sync(google_connector)
    flags = {visibility: mirror.events[eid].private for visibility, eid in marked.items()}
    assert flags == {
        "private": True,
        "confidential": True,
        "public": False,
        "default": False,
        None: False,
    }
