"""The emulator refuses what Google refuses, so the connector's tests mean something."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from connectors.google.client import CALENDAR_FREEBUSY_SCOPE, CalendarWireClient, GoogleApiError
from tests.emulators.google import fixtures, recurrence
from tests.emulators.google.emulator import SYNC_TOKEN_FORBIDDEN, GoogleEmulator
from tests.emulators.google.fixtures import REP

# pytest fixtures shared with the other Google test modules
google_emulator = fixtures.google_emulator
google_env = fixtures.google_env

T0 = (datetime.now(UTC) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)


@pytest.fixture
def wire(google_env) -> Iterator[CalendarWireClient]:
    client = CalendarWireClient(
        str(google_env.key_file), google_env.emulator.api_root, max_attempts=1
    )
    try:
        yield client
    finally:
        client.close()


def _call(wire: CalendarWireClient, build) -> dict:
    return wire._call_with_retries(REP, "test", build)


def _sync_token(wire: CalendarWireClient) -> str:
    body = _call(wire, lambda s: s.events().list(calendarId=REP, singleEvents=True))
    return body["nextSyncToken"]


VALUES = {
    "iCalUID": "x@google.com",
    "orderBy": "updated",
    "privateExtendedProperty": "a=b",
    "q": "hello",
    "sharedExtendedProperty": "a=b",
    "timeMin": "2026-01-01T00:00:00Z",
    "timeMax": "2027-01-01T00:00:00Z",
    "updatedMin": "2026-01-01T00:00:00Z",
}


@pytest.mark.parametrize("param", SYNC_TOKEN_FORBIDDEN)
def test_sync_token_with_forbidden_parameter_is_400(wire: CalendarWireClient, param: str) -> None:
    token = _sync_token(wire)
    with pytest.raises(GoogleApiError) as info:
        _call(
            wire,
            lambda s: s.events().list(calendarId=REP, syncToken=token, **{param: VALUES[param]}),
        )
    assert info.value.status == 400 and param in info.value.message


def test_sync_token_with_show_deleted_false_is_400(wire: CalendarWireClient) -> None:
    token = _sync_token(wire)
    with pytest.raises(GoogleApiError) as info:
        _call(wire, lambda s: s.events().list(calendarId=REP, syncToken=token, showDeleted=False))
    assert info.value.status == 400


def test_page_token_requires_the_original_query(
    wire: CalendarWireClient,
    google_emulator: GoogleEmulator,
) -> None:
    for h in range(3):
        google_emulator.create_event(
            REP, start=T0 + timedelta(hours=h), end=T0 + timedelta(hours=h, minutes=30)
        )
    first = _call(wire, lambda s: s.events().list(calendarId=REP, singleEvents=True, maxResults=2))
    token = first["nextPageToken"]
    assert "nextSyncToken" not in first  # only on the last page
    with pytest.raises(GoogleApiError) as info:
        _call(wire, lambda s: s.events().list(calendarId=REP, maxResults=2, pageToken=token))
    assert info.value.status == 400
    last = _call(
        wire,
        lambda s: s.events().list(calendarId=REP, singleEvents=True, maxResults=2, pageToken=token),
    )
    assert "nextSyncToken" in last and "nextPageToken" not in last


def test_invalidated_token_is_410_full_sync_required(
    wire: CalendarWireClient,
    google_emulator: GoogleEmulator,
) -> None:
    token = _sync_token(wire)
    google_emulator.invalidate_sync_tokens(REP)
    with pytest.raises(GoogleApiError) as info:
        _call(wire, lambda s: s.events().list(calendarId=REP, singleEvents=True, syncToken=token))
    assert (info.value.status, info.value.reason) == (410, "fullSyncRequired")


def test_show_deleted_full_listing_includes_cancelled_instances(
    wire: CalendarWireClient,
    google_emulator: GoogleEmulator,
) -> None:
    series = google_emulator.create_event(
        REP, start=T0, end=T0 + timedelta(hours=1), recurrence=["RRULE:FREQ=DAILY;COUNT=3"]
    )
    cancelled = google_emulator.cancel_instance(REP, series, T0 + timedelta(days=1))
    live = _call(wire, lambda s: s.events().list(calendarId=REP, singleEvents=True))
    everything = _call(
        wire, lambda s: s.events().list(calendarId=REP, singleEvents=True, showDeleted=True)
    )
    assert cancelled not in {i["id"] for i in live["items"]}
    assert {i["id"]: i["status"] for i in everything["items"]}[cancelled] == "cancelled"
    masters = _call(wire, lambda s: s.events().list(calendarId=REP))
    assert [i["id"] for i in masters["items"]] == [series]
    assert masters["items"][0]["recurrence"] == ["RRULE:FREQ=DAILY;COUNT=3"]


def test_token_scopes_are_enforced_per_method(google_env) -> None:
    client = CalendarWireClient(
        str(google_env.key_file),
        google_env.emulator.api_root,
        scopes=[CALENDAR_FREEBUSY_SCOPE],
        max_attempts=1,
    )
    try:
        with pytest.raises(GoogleApiError) as info:
            client._call_with_retries(REP, "t", lambda s: s.events().list(calendarId=REP))
        assert info.value.status == 403 and info.value.reason == "insufficientPermissions"
        body = client._call_with_retries(
            REP,
            "t",
            lambda s: s.freebusy().query(
                body={
                    "timeMin": "2026-01-01T00:00:00Z",
                    "timeMax": "2026-01-02T00:00:00Z",
                    "items": [{"id": REP}],
                }
            ),
        )
        assert body["calendars"][REP]["busy"] == []
    finally:
        client.close()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            {"id": "c1", "type": "web_hook", "address": "http://example.test/hook"},
            "push.webhookUrlNotHttps",
        ),
        ({"id": "c1", "type": "carrier_pigeon", "address": "https://example.test/hook"}, "invalid"),
        ({"type": "web_hook", "address": "https://example.test/hook"}, "required"),
    ],
)
def test_watch_validation(wire: CalendarWireClient, body: dict, reason: str) -> None:
    with pytest.raises(GoogleApiError) as info:
        _call(wire, lambda s: s.events().watch(calendarId=REP, body=body))
    assert info.value.status == 400 and info.value.reason == reason


def test_channel_ids_must_be_unique(
    wire: CalendarWireClient,
    google_emulator: GoogleEmulator,
) -> None:
    body = {"id": "c1", "type": "web_hook", "address": google_emulator.sink_url("x")}
    response = _call(wire, lambda s: s.events().watch(calendarId=REP, body=body))
    assert response["kind"] == "api#channel" and isinstance(response["expiration"], str)
    assert "token" not in response  # none was asked for
    with pytest.raises(GoogleApiError) as info:
        _call(wire, lambda s: s.events().watch(calendarId=REP, body=body))
    assert info.value.reason == "channelIdNotUnique"
    google_emulator.wait_for_sink("x", 1)


@pytest.mark.parametrize("event_id", ["abc", "UPPERCASE", "has_underscore", "wxyz12345"])
def test_insert_refuses_invalid_ids(wire: CalendarWireClient, event_id: str) -> None:
    body = {
        "id": event_id,
        "start": {"dateTime": "2026-01-05T10:00:00Z"},
        "end": {"dateTime": "2026-01-05T11:00:00Z"},
    }
    with pytest.raises(GoogleApiError) as info:
        _call(wire, lambda s: s.events().insert(calendarId=REP, body=body))
    assert info.value.status == 400


def test_weekly_rule_keeps_wall_clock_time_across_dst() -> None:
    paris = ZoneInfo("Europe/Paris")
    start = datetime(2026, 3, 20, 10, 0, tzinfo=paris)  # DST starts 2026-03-29
    got = recurrence.expand(
        ["RRULE:FREQ=WEEKLY;BYDAY=MO,FR;COUNT=5"], start, paris, start + timedelta(days=60)
    )
    assert [d.strftime("%a %d %H:%M") for d in got] == [
        "Fri 20 10:00", "Mon 23 10:00", "Fri 27 10:00", "Mon 30 10:00", "Fri 03 10:00",
    ]  # fmt: skip
    assert got[3].utcoffset() == timedelta(hours=2)


def test_rule_subset() -> None:
    utc = ZoneInfo("UTC")
    start = datetime(2026, 1, 1, 9, tzinfo=utc)
    horizon = start + timedelta(days=30)
    assert len(recurrence.expand(["RRULE:FREQ=DAILY;INTERVAL=3"], start, utc, horizon)) == 11
    until = recurrence.expand(["RRULE:FREQ=DAILY;UNTIL=20260105T090000Z"], start, utc, horizon)
    assert len(until) == 5
    exdate = recurrence.expand(
        ["RRULE:FREQ=DAILY;COUNT=3", "EXDATE:20260102T090000Z"], start, utc, horizon
    )
    assert [d.day for d in exdate] == [1, 3]
    assert recurrence.instance_suffix(start) == "20260101T090000Z"
    assert recurrence.instance_suffix(start.date()) == "20260101"
