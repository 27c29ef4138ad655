"""Account history from the Microsoft Graph emulator: a moved event is an update with a new
start; a moved occurrence of a series is an exception (``originalStart`` ≠ ``start``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.clock import ManualClock
from app.config import load_settings
from app.db.models import AccountHistory
from app.main import build_runtime, close_runtime
from app.runtime import Runtime
from app.sync.service import sync_calendar
from connectors.microsoft import MicrosoftConnector
from tests.conftest import START
from tests.emulators.microsoft.emulator import Recurrence
from tests.emulators.microsoft.harness import (
    CertPair,
    RunningEmulator,
    generate_self_signed_cert,
    run_emulator,
    trust_env,
)
from tests.helpers.fakes import RecordingChannel

REP = "rep@contoso.com"
DANA = "dana.smith@acme.com"
D, H = timedelta(days=1), timedelta(hours=1)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> CertPair:
    return generate_self_signed_cert(tmp_path_factory.mktemp("ms-cert"))


@pytest.fixture
def ms(cert: CertPair, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningEmulator]:
    for key, value in trust_env(cert).items():
        monkeypatch.setenv(key, value)
    with run_emulator(cert) as running:
        running.emulator.add_user(REP, display_name="Rita Rep")
        yield running


@pytest.fixture
async def mrt(database_url: str, ms: RunningEmulator) -> AsyncIterator[Runtime]:
    settings = load_settings(
        database_url=database_url, internal_domains="contoso.com", api_keys="k"
    )
    if not database_url.startswith("sqlite"):
        from app.db import migrate
        from app.db.engine import make_engine

        engine = make_engine(database_url)
        migrate.upgrade(engine)
        engine.dispose()
    connector = MicrosoftConnector(
        ms.tenant_id,
        ms.client_id,
        ms.client_secret,
        authority=ms.authority,
        graph_root=ms.graph_root,
        backoff_base=0.001,
        backoff_cap=0.005,
        page_size=5,
        timeout=10.0,
    )
    rt = build_runtime(
        settings,
        clock=ManualClock(START),
        providers={"microsoft": connector},
        channels={"recording": RecordingChannel()},
    )
    yield rt
    await close_runtime(rt)


async def _history(rt: Runtime) -> list[tuple]:
    return await rt.db.run(
        lambda s: [
            (r.event_id, r.kind, r.old_start, r.start)
            for r in s.scalars(select(AccountHistory).order_by(AccountHistory.id))
        ]
    )


async def test_graph_moves_and_exceptions_become_history(mrt, ms):
    from app.reps import service
    from app.reps.schemas import RepIn

    em = ms.emulator
    first = START - 5 * 7 * D + H
    master = em.add_event(
        REP,
        subject="Acme weekly review",
        start=first,
        end=first + H,
        attendees=[(DANA, "required", "accepted")],
        recurrence=Recurrence(freq="weekly", count=8),
    )
    moved_before = em.modify_occurrence(
        REP, master, first + 7 * D, start=first + 8 * D, end=first + 8 * D + H
    )
    single = em.add_event(
        REP,
        subject="Acme pricing",
        start=START + 2 * D,
        end=START + 2 * D + H,
        attendees=[(DANA, "required", "none")],
    )
    rep = (
        await service.register(mrt, RepIn(email=REP, provider="microsoft", timezone="UTC"))
    ).model_dump()
    rows = await _history(mrt)
    assert (moved_before, "moved", first + 7 * D, first + 8 * D) in rows
    assert sum(1 for r in rows if r[1] == "seen") == 9

    em.move_event(REP, single, START + 9 * D, START + 9 * D + H)
    nxt = first + 6 * 7 * D
    moved_after = em.modify_occurrence(REP, master, nxt, start=nxt + 2 * D, end=nxt + 2 * D + H)
    await sync_calendar(mrt, rep["id"])
    new = (await _history(mrt))[len(rows) :]
    assert (single, "moved", START + 2 * D, START + 9 * D) in new
    assert (moved_after, "moved", nxt, nxt + 2 * D) in new


async def test_registration_reads_more_than_a_year_back_and_a_year_ahead(mrt, ms):
    """calendarView's window runs from 400 days back (the default history window) to a year
    ahead of now, page by page (page size 5)."""
    from app.reps import service
    from app.reps.schemas import RepIn

    em = ms.emulator
    ids = [
        em.add_event(
            REP,
            subject=f"Acme check-in {days}",
            start=START - days * D,
            end=START - days * D + H,
            attendees=[(DANA, "required", "accepted")],
        )
        for days in range(390, 0, -30)
    ]
    too_old = em.add_event(
        REP,
        subject="Acme kickoff",
        start=START - 420 * D,
        end=START - 420 * D + H,
        attendees=[(DANA, "required", "accepted")],
    )
    ahead = em.add_event(
        REP,
        subject="Acme QBR",
        start=START + 200 * D,
        end=START + 200 * D + H,
        attendees=[(DANA, "required", "none")],
    )
    await service.register(mrt, RepIn(email=REP, provider="microsoft", timezone="UTC"))
    seen = {r[0] for r in await _history(mrt) if r[1] == "seen"}
    assert seen == {*ids, ahead} and too_old not in seen
