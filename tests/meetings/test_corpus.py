"""Precision and recall of prospect-meeting detection and follow-up matching on a labelled
corpus of realistic calendars (tests/meetings/corpus.py: 220 prospect meetings on four
reps' calendars — series with exceptions, reschedules, rooms, free-mail prospects, time
zones, DST weeks), played through the whole engine: the sandbox calendars are synced at
registration, the reschedules after it, and the meetings read back from ``GET /v1/meetings``.

Thresholds: detection and matching must both be exact (precision = recall = 1.0). The
labels are the contract's rules applied by the stories that wrote each event, not
heuristics: every event is unambiguous under "Prospect meetings and their state", so any
miss is a rule the engine gets wrong, not noise to tolerate. The figures are printed.
"""

from __future__ import annotations

import httpx
import pytest

from app.clock import ManualClock
from app.main import create_app
from tests.helpers.calendar import register
from tests.meetings.corpus import REPS, T0, generate


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def score(tp: int, fp: int, fn: int) -> tuple[float, float]:
    return (tp / (tp + fp) if tp + fp else 1.0, tp / (tp + fn) if tp + fn else 1.0)


async def test_detection_and_follow_up_matching_on_the_labelled_corpus(rt, sim):
    corpus = generate()
    truth = corpus.meetings()
    expected = corpus.follow_ups()
    assert len(truth) >= 200
    sb = rt.providers["sandbox"]
    for item in corpus.items:
        sb.put_event(item.rep, item.event)
    reps = {}
    for email, zone in REPS.items():
        reps[email] = (await register(rt, email=email, timezone=zone))["id"]
    await sim.settle()
    for item in corpus.items:  # the reschedules and cancellations, after registration
        if item.move_to is not None:
            sb.move_event(item.rep, item.event.event_id, item.move_to)
        if item.cancel:
            sb.cancel_event(item.rep, item.event.event_id)
    await sim.settle()

    app = create_app(runtime=rt, start_scheduler=False)
    found: dict[tuple[str, str], tuple[str, str | None]] = {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"Authorization": "Bearer test-key"},
    ) as api:
        for email, rep_id in reps.items():
            r = await api.get("/v1/meetings", params={"rep_id": rep_id})
            assert r.status_code == 200, r.text
            for m in r.json()["items"]:
                fu = m["follow_up"]["event_id"] if m["follow_up"] else None
                found[(email, m["event_id"])] = (m["account_domain"], fu)

    detected = {k: v[0] for k, v in found.items()}
    tp = sum(1 for k, acc in detected.items() if truth.get(k) == acc)
    fp = len(detected) - tp
    fn = sum(1 for k, acc in truth.items() if detected.get(k) != acc)
    det_p, det_r = score(tp, fp, fn)

    ftp = ffp = ffn = 0
    misses = []
    for key in truth:
        if key not in found:
            continue
        got, want = found[key][1], expected[key]
        if got is not None and got == want:
            ftp += 1
        else:
            ffp += got is not None
            ffn += want is not None
            if got != want:
                misses.append((key, got, want))
    fu_p, fu_r = score(ftp, ffp, ffn)
    print(
        f"\ncorpus: {len(corpus.items)} events, {len(truth)} prospect meetings, "
        f"{sum(1 for v in expected.values() if v)} with a follow-up"
        f"\ndetection: precision {det_p:.3f} recall {det_r:.3f} (tp {tp}, fp {fp}, fn {fn})"
        f"\nfollow-up matching: precision {fu_p:.3f} recall {fu_r:.3f}"
        f" (tp {ftp}, fp {ffp}, fn {ffn})"
    )
    wrong = sorted(set(detected.items()) ^ set(truth.items()))
    assert (det_p, det_r) == (1.0, 1.0), wrong[:10]
    assert (fu_p, fu_r) == (1.0, 1.0), misses[:10]
