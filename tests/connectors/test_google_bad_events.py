"""One event Google lists that cannot be read never fails the page: it is skipped and named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.base import CalendarRef
from connectors.google.connector import GoogleConnector
from tests.emulators.google import fixtures
from tests.emulators.google.emulator import GoogleEmulator
from tests.emulators.google.fixtures import REP

google_connector = fixtures.google_connector
google_emulator = fixtures.google_emulator
google_env = fixtures.google_env

CAL = CalendarRef(rep_id="r1", email=REP)
T0 = (datetime.now(UTC) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)


async def test_undecodable_and_backwards_events_are_skipped_and_named(
    google_connector: GoogleConnector, google_emulator: GoogleEmulator
) -> None:
    ids = [
        google_emulator.create_event(
            REP,
            start=T0 + timedelta(hours=h),
            end=T0 + timedelta(hours=h, minutes=30),
            summary=f"m{h}",
            attendees=["buyer@prospect.test"],
        )
        for h in range(4)
    ]
    events = google_emulator.calendars[REP].events
    events[ids[1]].body["end"] = {"dateTime": (T0 + timedelta(minutes=50)).isoformat()}  # backwards
    events[ids[2]].body["created"] = "yesterday-ish"  # a field we cannot decode
    seen, skipped = [], []
    cursor = None
    while True:
        page = await google_connector.sync_page(CAL, cursor, since=T0 - timedelta(days=1))
        seen += [e.event_id for e in page.events]
        skipped += page.skipped
        cursor = page.cursor
        if page.last_page:
            break
    assert sorted(seen) == sorted([ids[0], ids[3]])
    assert len(skipped) == 2
    assert any(s.startswith(ids[1]) and "before it starts" in s for s in skipped)
    assert any(s.startswith(ids[2]) for s in skipped)
