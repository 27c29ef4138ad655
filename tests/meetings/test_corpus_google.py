"""The labelled corpus (tests/meetings/corpus.py) through the Google emulator: the same
calendars written as Google keeps them — the weekly series as one recurring event whose
instances are expanded in the prospect's zone (its UTC time moves at DST), a moved instance
as an exception, rooms as ``resource`` attendees or room-calendar addresses, out-of-office
and focus time as their event types, all-day events as dates — synced page by page by the
real client library, then scored like the sandbox run. Same thresholds, same reason: the
labels are the contract's rules.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.clock import ManualClock
from app.config import load_settings
from app.main import build_runtime, close_runtime, create_app
from app.runtime import Runtime
from app.sync.service import sync_calendar
from connectors.google.connector import GoogleConnector
from tests.emulators.google import fixtures
from tests.emulators.google import recurrence as rrule
from tests.emulators.google.harness import setup_google
from tests.helpers.fakes import RecordingChannel
from tests.meetings.corpus import REPS, T0, Item, generate
from tests.meetings.test_corpus import score

google_emulator = fixtures.google_emulator
SPELL = {"needs_action": "needsAction"}
TYPES = {"out_of_office": "outOfOffice", "focus_time": "focusTime"}


@pytest.fixture
async def crt(database_url: str, google_emulator, tmp_path: Path) -> AsyncIterator[Runtime]:  # type: ignore[no-untyped-def]
    env = setup_google(google_emulator, tmp_path, reps=list(REPS))
    settings = load_settings(database_url=database_url, internal_domains="seller.io", api_keys="k")
    if not database_url.startswith("sqlite"):
        from app.db import migrate
        from app.db.engine import make_engine

        engine = make_engine(database_url)
        migrate.upgrade(engine)
        engine.dispose()
    connector = GoogleConnector(
        str(env.key_file),
        env.emulator.api_root,
        backoff_base=0.001,
        backoff_cap=0.005,
        page_size=25,
        http_timeout=5.0,
    )
    rt = build_runtime(
        settings,
        clock=ManualClock(T0),
        providers={"google": connector},
        channels={"recording": RecordingChannel()},
    )
    rt.google_emulator = env.emulator  # type: ignore[attr-defined]
    yield rt
    await close_runtime(rt)


def guests(item: Item) -> list[dict[str, Any]]:
    out = []
    for a in item.event.attendees:
        if a.email == item.rep:
            continue
        row: dict[str, Any] = {
            "email": a.email,
            "responseStatus": SPELL.get(a.response, a.response),
        }
        if a.is_resource:
            row["resource"] = True
        out.append(row)
    return out


def write(emu: Any, items: list[Item]) -> dict[tuple[str, str], str]:
    """Put the corpus on the emulator's calendars; corpus id → Google id."""
    ids: dict[tuple[str, str], str] = {}
    series: dict[tuple[str, str], list[Item]] = defaultdict(list)
    for item in items:
        e = item.event
        if e.recurring_event_id:
            series[(item.rep, e.recurring_event_id)].append(item)
            continue
        start, end = (e.start.date(), e.end.date()) if e.all_day else (e.start, e.end)
        gid = emu.create_event(
            item.rep, start=start, end=end, summary=e.title, time_zone=e.time_zone or "UTC",
            attendees=guests(item), organizer=e.organizer_email,
            event_type=TYPES.get(e.event_type, "default"), event_id=e.event_id,
        )  # fmt: skip
        if e.organizer_email != item.rep:
            emu.set_response(item.rep, gid, item.rep, SPELL.get(e.rep_response, e.rep_response))
        ids[(item.rep, e.event_id)] = gid
    for (rep, sid), instances in series.items():
        instances.sort(key=lambda i: i.event.original_start or i.event.start)
        first = instances[0].event
        origin = first.original_start or first.start
        # The series as Google keeps it: the attendees of a plain instance, in its zone.
        plain = next(i for i in instances if i.meeting_of and i.event.original_start is None)
        emu.create_event(
            rep, start=origin, end=origin + (first.end - first.start), summary=first.title,
            time_zone=first.time_zone or "UTC", attendees=guests(plain), event_id=sid,
            recurrence=[f"RRULE:FREQ=WEEKLY;COUNT={len(instances)}"],
        )  # fmt: skip
        for item in instances:
            e = item.event
            orig = e.original_start or e.start
            iid = f"{sid}_{rrule.instance_suffix(orig)}"
            ids[(rep, e.event_id)] = iid
            if e.original_start is not None:
                emu.move_instance(rep, sid, orig, e.start, e.end)
            if e.status == "cancelled":
                emu.cancel_instance(rep, sid, orig)
            for a in e.attendees:
                if a.response == "declined" and a.email != rep:
                    emu.set_response(rep, iid, a.email, "declined")
    return ids


async def test_the_corpus_through_the_google_emulator(crt):
    corpus = generate()
    truth, expected = corpus.meetings(), corpus.follow_ups()
    emu = crt.google_emulator
    ids = write(emu, corpus.items)
    back = {(rep, gid): cid for (rep, cid), gid in ids.items()}
    from app.reps import service
    from app.reps.schemas import RepIn

    reps = {}
    for email, zone in REPS.items():
        rep = await service.register(crt, RepIn(email=email, provider="google", timezone=zone))
        reps[email] = rep.id
    for item in corpus.items:
        gid = ids[(item.rep, item.event.event_id)]
        if item.move_to is not None:
            emu.move_event(item.rep, gid, item.move_to, item.end)
        if item.cancel:
            emu.cancel_event(item.rep, gid)
    for rep_id in reps.values():
        assert await sync_calendar(crt, rep_id)

    app = create_app(runtime=crt, start_scheduler=False)
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
        f"\ngoogle: detection precision {dp:.3f} recall {dr:.3f} (tp {tp}, fp {fp}, fn {fn});"
        f" follow-up matching precision {fp_:.3f} recall {fr:.3f}"
        f" (tp {ftp}, fp {ffp}, fn {ffn})"
    )
    wrong = sorted(set(detected.items()) ^ set(truth.items()))
    assert (dp, dr) == (1.0, 1.0), wrong[:10]
    assert (fp_, fr) == (1.0, 1.0), misses[:10]
