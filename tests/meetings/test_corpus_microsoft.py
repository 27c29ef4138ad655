"""The labelled corpus (tests/meetings/corpus.py) through the Microsoft Graph emulator: the
weekly series as one Outlook series expanded at its own wall-clock time across DST, a moved
occurrence as an exception, a cancelled one deleted from the series, one declined by the
account as an exception with its own answers, rooms as ``resource`` attendees, out of
office as ``showAs: oof``, the prospect's invitations as the rep's copy shows them (no one
else's answers) — synced through ``calendarView/delta`` page by page and scored like the
sandbox run. Same thresholds, same reason: the labels are the contract's rules.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from app.clock import ManualClock
from app.config import load_settings
from app.main import build_runtime, close_runtime, create_app
from app.runtime import Runtime
from app.sync.service import sync_calendar
from connectors.microsoft import MicrosoftConnector
from tests.emulators.microsoft.emulator import Recurrence
from tests.emulators.microsoft.harness import (
    CertPair,
    RunningEmulator,
    generate_self_signed_cert,
    run_emulator,
    trust_env,
)
from tests.helpers.fakes import RecordingChannel
from tests.meetings.corpus import REPS, T0, Item, generate
from tests.meetings.test_corpus import score

SPELL = {"needs_action": "none", "tentative": "tentativelyAccepted"}


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> CertPair:
    return generate_self_signed_cert(tmp_path_factory.mktemp("ms-cert"))


@pytest.fixture
def ms(cert: CertPair, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningEmulator]:
    for key, value in trust_env(cert).items():
        monkeypatch.setenv(key, value)
    with run_emulator(cert) as running:
        for email in REPS:
            running.emulator.add_user(email, display_name=email.split("@")[0].title())
        yield running


@pytest.fixture
async def mrt(database_url: str, ms: RunningEmulator) -> AsyncIterator[Runtime]:
    settings = load_settings(database_url=database_url, internal_domains="seller.io", api_keys="k")
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
        page_size=25,
        timeout=10.0,
    )
    rt = build_runtime(
        settings,
        clock=ManualClock(T0),
        providers={"microsoft": connector},
        channels={"recording": RecordingChannel()},
    )
    yield rt
    await close_runtime(rt)


def guests(item: Item) -> list[tuple[str, str, str]]:
    """Graph lists the invitees (the rep among them when someone else organises), not the
    organiser."""
    org = (item.event.organizer_email or item.rep).lower()
    return [
        (a.email, "resource" if a.is_resource else "required", SPELL.get(a.response, a.response))
        for a in item.event.attendees
        if a.email != org
    ]


def write(emu: Any, items: list[Item]) -> dict[tuple[str, str], str]:
    """Put the corpus on the emulator's mailboxes; corpus id → Graph id."""
    ids: dict[tuple[str, str], str] = {}
    series: dict[tuple[str, str], list[Item]] = defaultdict(list)
    for item in items:
        e = item.event
        if e.recurring_event_id:
            series[(item.rep, e.recurring_event_id)].append(item)
            continue
        org = e.organizer_email if e.organizer_email != item.rep else None
        ids[(item.rep, e.event_id)] = emu.add_event(
            item.rep, subject=e.title, start=e.start, end=e.end,
            time_zone=e.time_zone or "UTC", attendees=guests(item), organizer=org,
            own_response=SPELL.get(e.rep_response, e.rep_response) if org else None,
            show_as="oof" if e.event_type == "out_of_office" else "busy", all_day=e.all_day,
        )  # fmt: skip
    for (rep, _sid), instances in series.items():
        instances.sort(key=lambda i: i.event.original_start or i.event.start)
        first = instances[0].event
        origin = first.original_start or first.start
        plain = next(i for i in instances if i.meeting_of and i.event.original_start is None)
        master = emu.add_event(
            rep, subject=first.title, start=origin, end=origin + (first.end - first.start),
            time_zone=first.time_zone or "UTC", attendees=guests(plain),
            recurrence=Recurrence(freq="weekly", count=len(instances)),
        )  # fmt: skip
        for item in instances:
            e = item.event
            orig = e.original_start or e.start
            ids[(rep, e.event_id)] = emu.occurrence_id(rep, master, orig)
            if e.original_start is not None:
                emu.modify_occurrence(rep, master, orig, start=e.start, end=e.end)
            if e.status == "cancelled":
                emu.delete_occurrence(rep, master, orig)
            for a in e.attendees:
                if a.response == "declined" and a.email != rep:
                    emu.set_occurrence_response(rep, master, orig, a.email, "declined")
    return ids


async def test_the_corpus_through_the_graph_emulator(mrt, ms):
    corpus = generate()
    truth, expected = corpus.meetings(), corpus.follow_ups()
    emu = ms.emulator
    ids = write(emu, corpus.items)
    back = {(rep, gid): cid for (rep, cid), gid in ids.items()}
    from app.reps import service
    from app.reps.schemas import RepIn

    reps = {}
    for email, zone in REPS.items():
        rep = await service.register(mrt, RepIn(email=email, provider="microsoft", timezone=zone))
        reps[email] = rep.id
    for item in corpus.items:
        gid = ids[(item.rep, item.event.event_id)]
        if item.move_to is not None:
            emu.move_event(item.rep, gid, item.move_to, item.end)
        if item.cancel:
            emu.cancel_event(item.rep, gid)
    for rep_id in reps.values():
        assert await sync_calendar(mrt, rep_id)

    app = create_app(runtime=mrt, start_scheduler=False)
    found: dict[tuple[str, str], tuple[str, str | None]] = {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"Authorization": "Bearer k"},
    ) as api:
        for email, rep_id in reps.items():
            r = await api.get("/v1/meetings", params={"rep_id": rep_id})
            assert r.status_code == 200, r.text
            for m in r.json()["items"]:
                fu = m["follow_up"]["event_id"] if m["follow_up"] else None
                key = (email, back.get((email, m["event_id"]), m["event_id"]))
                found[key] = (m["account_domain"], back.get((email, fu), fu) if fu else None)

    detected = {k: v[0] for k, v in found.items()}
    tp = sum(1 for k, acc in detected.items() if truth.get(k) == acc)
    fp, fn = len(detected) - tp, sum(1 for k, acc in truth.items() if detected.get(k) != acc)
    ftp = ffp = ffn = 0
    misses = []
    for key in truth:
        if key not in found:
            continue
        got, want = found[key][1], expected[key]
        if got is not None and got == want:
            ftp += 1
            continue
        ffp += got is not None
        ffn += want is not None
        misses.append((key, got, want))
    (dp, dr), (fp_, fr) = score(tp, fp, fn), score(ftp, ffp, ffn)
    print(
        f"\nmicrosoft: detection precision {dp:.3f} recall {dr:.3f} (tp {tp}, fp {fp}, fn {fn});"
        f" follow-up matching precision {fp_:.3f} recall {fr:.3f}"
        f" (tp {ftp}, fp {ffp}, fn {ffn})"
    )
    wrong = sorted(set(detected.items()) ^ set(truth.items()))
    assert (dp, dr) == (1.0, 1.0), wrong[:10]
    assert (fp_, fr) == (1.0, 1.0), misses[:10]
