"""Account history from the Google emulator, reschedules as Google reports them: a moved
event is an update carrying the new start; a moved recurring instance is an exception
(``originalStartTime`` ≠ ``start``), before registration or after."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.clock import ManualClock
from app.config import load_settings
from app.db.models import AccountHistory
from app.main import build_runtime, close_runtime
from app.runtime import Runtime
from app.sync.service import sync_calendar
from connectors.google.connector import GoogleConnector
from tests.conftest import START
from tests.emulators.google import fixtures
from tests.emulators.google.fixtures import REP
from tests.helpers.fakes import RecordingChannel

google_emulator = fixtures.google_emulator
google_env = fixtures.google_env
D, H = timedelta(days=1), timedelta(hours=1)
DANA = "dana.smith@acme.com"


@pytest.fixture
async def grt(database_url: str, google_env) -> AsyncIterator[Runtime]:  # type: ignore[no-untyped-def]
    settings = load_settings(database_url=database_url, internal_domains="corp.test", api_keys="k")
    if not database_url.startswith("sqlite"):
        from app.db import migrate
        from app.db.engine import make_engine

        engine = make_engine(database_url)
        migrate.upgrade(engine)
        engine.dispose()
    connector = GoogleConnector(
        str(google_env.key_file),
        google_env.emulator.api_root,
        backoff_base=0.001,
        backoff_cap=0.005,
        page_size=5,
        http_timeout=5.0,
    )
    rt = build_runtime(
        settings,
        clock=ManualClock(START),
        providers={"google": connector},
        channels={"recording": RecordingChannel()},
    )
    yield rt
    await close_runtime(rt)


async def _history(rt: Runtime) -> list[tuple]:
    return await rt.db.run(
        lambda s: [
            (r.event_id, r.kind, r.old_start, r.start, r.actor_side)
            for r in s.scalars(select(AccountHistory).order_by(AccountHistory.id))
        ]
    )


async def test_google_moves_and_exceptions_become_history(grt, google_env):
    from app.reps import service
    from app.reps.schemas import RepIn

    emu = google_env.emulator
    first = START - 5 * 7 * D + H
    series = emu.create_event(
        REP,
        start=first,
        end=first + H,
        summary="Acme weekly review",
        attendees=[{"email": DANA, "responseStatus": "accepted"}],
        recurrence=["RRULE:FREQ=WEEKLY;COUNT=8"],
    )
    # Moved before we watched: an exception the full listing shows as such.
    moved_before = emu.move_instance(REP, series, first + 7 * D, first + 8 * D, first + 8 * D + H)
    single = emu.create_event(
        REP, start=START + 2 * D, end=START + 2 * D + H, summary="Acme pricing", attendees=[DANA]
    )
    rep = (
        await service.register(grt, RepIn(email=REP, provider="google", timezone="UTC"))
    ).model_dump()
    rows = await _history(grt)
    assert (moved_before, "moved", first + 7 * D, first + 8 * D, "internal") in rows
    assert sum(1 for r in rows if r[1] == "seen") == 9  # 8 instances + the single event

    # After registration: a reschedule is an update with a new start ...
    emu.move_event(REP, single, START + 9 * D, START + 9 * D + H)
    # ... and moving one future occurrence makes it an exception.
    nxt = first + 6 * 7 * D
    moved_after = emu.move_instance(REP, series, nxt, nxt + 2 * D, nxt + 2 * D + H)
    emu.set_response(REP, single, DANA, "declined")
    await sync_calendar(grt, rep["id"])
    new = (await _history(grt))[len(rows) :]
    assert (single, "moved", START + 2 * D, START + 9 * D, "internal") in new
    assert (moved_after, "moved", nxt, nxt + 2 * D, "internal") in new
    assert any(r[0] == single and r[1] == "response" for r in new)


async def test_registration_reads_more_than_a_year_back_page_by_page(grt, google_env):
    """The default history window (P400D) reaches 13 months back; the listing takes many
    pages (page size 5) and all of them are read."""
    from app.reps import service
    from app.reps.schemas import RepIn

    emu = google_env.emulator
    ids = [
        emu.create_event(
            REP,
            start=START - days * D,
            end=START - days * D + H,
            summary=f"Acme check-in {days}",
            attendees=[{"email": DANA, "responseStatus": "accepted"}],
        )
        for days in range(390, 0, -30)
    ]
    too_old = emu.create_event(
        REP,
        start=START - 420 * D,
        end=START - 420 * D + H,
        summary="Acme kickoff",
        attendees=[DANA],
    )
    ahead = emu.create_event(
        REP, start=START + 200 * D, end=START + 200 * D + H, summary="Acme QBR", attendees=[DANA]
    )
    await service.register(grt, RepIn(email=REP, provider="google", timezone="UTC"))
    seen = {r[0] for r in await _history(grt) if r[1] == "seen"}
    assert seen == {*ids, ahead} and too_old not in seen
    assert len(ids) == 13
