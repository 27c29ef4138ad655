"""freeBusy.query and events.insert (sendUpdates=all, idempotent retries)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from connectors.base import (
    BusyInterval,
    CalendarRef,
    NewEvent,
    NotFound,
    ProviderError,
    Unavailable,
)
from connectors.google.connector import GoogleConnector, busy_from_google, event_id_for_request
from tests.emulators.google import fixtures, samples
from tests.emulators.google.emulator import GoogleEmulator
from tests.emulators.google.fixtures import REP

# pytest fixtures shared with the other Google test modules
google_connector = fixtures.google_connector
google_emulator = fixtures.google_emulator
google_env = fixtures.google_env

CAL = CalendarRef(rep_id="r1", email=REP)
T0 = (datetime.now(UTC) + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)


async def test_free_busy_from_the_calendar(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    emu = google_emulator
    emu.create_event(REP, start=T0, end=T0 + timedelta(hours=1))
    emu.create_event(REP, start=T0 + timedelta(minutes=30), end=T0 + timedelta(hours=2))  # overlaps
    emu.create_event(
        REP, start=T0 + timedelta(hours=3), end=T0 + timedelta(hours=4), transparency="transparent"
    )
    declined = emu.create_event(
        REP, start=T0 + timedelta(hours=5), end=T0 + timedelta(hours=6), organizer="x@prospect.test"
    )
    emu.set_response(REP, declined, REP, "declined")
    emu.create_event(
        REP, start=T0 + timedelta(hours=7), end=T0 + timedelta(hours=8),
        recurrence=["RRULE:FREQ=DAILY;INTERVAL=2;COUNT=3"], time_zone="America/New_York",
    )  # fmt: skip
    # the 3rd occurrence keeps New York wall-clock time even across a DST change
    new_york = ZoneInfo("America/New_York")
    third = ((T0 + timedelta(hours=7)).astimezone(new_york) + timedelta(days=2)).astimezone(UTC)
    busy = await google_connector.free_busy(CAL, T0 - timedelta(hours=1), T0 + timedelta(days=3))
    assert busy == [
        BusyInterval(start=T0, end=T0 + timedelta(hours=2)),
        BusyInterval(start=T0 + timedelta(hours=7), end=T0 + timedelta(hours=8)),
        BusyInterval(start=third, end=third + timedelta(hours=1)),
    ]
    (request,) = emu.requests_for("freebusy.query")
    assert request.body["items"] == [{"id": REP}]
    assert request.body["timeMin"] == (T0 - timedelta(hours=1)).isoformat().replace("+00:00", "Z")


async def test_libkgapi_free_busy_sample_through_the_client(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    response = samples.http_json_body("libkgapi/freebusy1_query_response.txt")
    google_emulator.add_user("MockAccount")  # libkgapi's account name is the subject here
    google_emulator.fail_next(1, 200, body=json.dumps(response), method="freebusy.query")
    mock = CalendarRef(rep_id="r1", email="MockAccount")
    busy = await google_connector.free_busy(
        mock, datetime(2018, 4, 1, 8, tzinfo=UTC), datetime(2018, 4, 2, 14, tzinfo=UTC)
    )
    assert busy == [
        BusyInterval(
            start=datetime(2018, 4, 1, 10, 30, tzinfo=UTC),
            end=datetime(2018, 4, 1, 11, 30, tzinfo=UTC),
        ),
        BusyInterval(
            start=datetime(2018, 4, 1, 13, 0, tzinfo=UTC),
            end=datetime(2018, 4, 1, 14, 30, tzinfo=UTC),
        ),
    ]
    # our request has the shape of libkgapi's (items/timeMin/timeMax)
    request = google_emulator.requests_for("freebusy.query")[0].body
    documented = samples.text("libkgapi/freebusy1_query_request.txt")
    documented_body = json.loads(documented[documented.index("{") :])
    assert set(documented_body) <= set(request)
    assert request["items"] == [{"id": "MockAccount"}]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("notFound", NotFound),
        ("internalError", Unavailable),
        ("backendError", Unavailable),
        ("groupTooBig", ProviderError),
    ],
)
def test_free_busy_calendar_errors(reason: str, expected: type) -> None:
    body = {"calendars": {REP: {"errors": [{"domain": "global", "reason": reason}], "busy": []}}}
    with pytest.raises(expected):
        busy_from_google(body, REP)


def test_free_busy_missing_calendar_is_not_found() -> None:
    with pytest.raises(NotFound):
        busy_from_google({"calendars": {}}, REP)


async def test_unknown_calendar_in_free_busy_is_not_found(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    body = await google_connector._call(
        CAL,
        "freebusy.query",
        lambda svc: svc.freebusy().query(
            body={
                "timeMin": "2026-01-01T00:00:00Z",
                "timeMax": "2026-01-02T00:00:00Z",
                "items": [{"id": "ghost@corp.test"}],
            }
        ),
    )
    with pytest.raises(NotFound):
        busy_from_google(body, "ghost@corp.test")


def _new_event(**kw) -> NewEvent:
    base = dict(
        title="Next step",
        start=T0,
        end=T0 + timedelta(minutes=15),
        attendees=("Buyer@Prospect.test", "champion@prospect.test"),
        body="Agenda: pricing",
        time_zone="Europe/Paris",
    )
    base.update(kw)
    return NewEvent(**base)  # type: ignore[arg-type]


async def test_insert_invites_attendees_with_send_updates_all(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    created = await google_connector.create_event(CAL, _new_event())
    (request,) = google_emulator.requests_for("events.insert")
    assert request.query["sendUpdates"] == ["all"]
    assert request.body["start"] == {"dateTime": T0.isoformat(), "timeZone": "Europe/Paris"}
    assert request.body["end"]["timeZone"] == "Europe/Paris"
    assert request.body["description"] == "Agenda: pricing"
    assert "id" not in request.body
    assert google_emulator.sent_updates == [(created.event_id, "all")]
    assert created.start == T0 and created.title == "Next step"
    assert created.organizer_email == REP and created.rep_response == "accepted"
    assert {a.email: a.response for a in created.attendees} == {
        "buyer@prospect.test": "needs_action",
        "champion@prospect.test": "needs_action",
    }


async def test_insert_with_request_id_is_idempotent(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    event = _new_event(request_id="meeting-42/follow-up")
    first = await google_connector.create_event(CAL, event)
    assert first.event_id == event_id_for_request("meeting-42/follow-up")
    again = await google_connector.create_event(CAL, event)  # e.g. the job ran twice
    assert again.event_id == first.event_id and again.start == first.start
    assert google_emulator.calls["events.insert"] == 2
    assert google_emulator.calls["events.get"] == 1
    assert len(google_emulator.calendars[REP].events) == 1


async def test_insert_retried_after_a_server_error(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    google_emulator.fail_next(2, 503, method="events.insert")
    created = await google_connector.create_event(CAL, _new_event(request_id="r-1"))
    assert google_emulator.calls["events.insert"] == 3
    assert list(google_emulator.calendars[REP].events) == [created.event_id]


@pytest.mark.parametrize("request_id", ["a", "x" * 2000, "déjà vu", "UPPER_case-123"])
def test_derived_event_ids_are_valid_google_ids(request_id: str) -> None:
    event_id = event_id_for_request(request_id)
    assert re.fullmatch(r"[a-v0-9]{5,1024}", event_id)
    assert event_id == event_id_for_request(request_id)
    assert event_id != event_id_for_request(request_id + "!")


async def test_meet_requested_patch_moves_and_delete_cancels(
    google_connector: GoogleConnector,
    google_emulator: GoogleEmulator,
) -> None:
    created = await google_connector.create_event(
        CAL, _new_event(video=True, request_id="meeting-1:nudge-1:0")
    )
    (insert,) = google_emulator.requests_for("events.insert")
    assert insert.query["conferenceDataVersion"] == ["1"]
    create = insert.body["conferenceData"]["createRequest"]
    assert create["conferenceSolutionKey"] == {"type": "hangoutsMeet"} and create["requestId"]
    assert created.video_link and created.video_link.startswith("https://meet.google.com/")
    assert created.description == "Agenda: pricing"

    google_emulator.set_response(REP, created.event_id, "buyer@prospect.test", "accepted")
    later = T0 + timedelta(days=1)
    moved = await google_connector.update_event(
        CAL,
        created.event_id,
        _new_event(start=later, end=later + timedelta(minutes=15), video=True),
    )
    (patch,) = google_emulator.requests_for("events.patch")
    assert patch.query["sendUpdates"] == ["all"]
    assert moved.event_id == created.event_id and moved.start == later
    assert moved.video_link == created.video_link, "the Meet is kept"
    buyer = next(a for a in moved.attendees if a.email == "buyer@prospect.test")
    assert buyer.response == "needs_action"

    await google_connector.delete_event(CAL, created.event_id)
    (delete,) = google_emulator.requests_for("events.delete")
    assert delete.query["sendUpdates"] == ["all"]
    await google_connector.delete_event(CAL, created.event_id)  # 410 deleted: fine
    with pytest.raises(NotFound):
        await google_connector.update_event(CAL, created.event_id, _new_event())
