"""One-click actions over the sandbox: GET shows and changes nothing, POST acts once,
forged/expired/superseded tokens are refused with a page that says why, the follow-up is
moved instead of doubled, the guards hold, a provider refusal leaves nothing half-done."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from app.db.models import ActionResult
from app.main import create_app
from connectors.base import AuthFailed, Conflict, Unavailable
from tests.conftest import START
from tests.helpers.calendar import REP, event

H = timedelta(hours=1)
DANA = "dana.smith@acme.com"
BOB = "bob.martin@seller.io"


@pytest.fixture
async def api(rt):
    app = create_app(runtime=rt, start_scheduler=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers={"Authorization": "Bearer test-key"}
    ) as client:
        yield client


async def _nudged(api, rt, sim, **rep):
    body = {"email": REP, "provider": "sandbox", "timezone": "Europe/Paris", **rep}
    assert (await api.post("/v1/reps", json=body)).status_code == 201
    first = rt.providers["sandbox"].put_event(
        REP, event(START + H, guests={DANA: "accepted", BOB: "accepted"})
    )
    await sim.run_until(START + 5 * H)
    (nudge,) = (await api.get("/v1/nudges")).json()["items"]
    return first, nudge


def _path(url: str) -> str:
    return urlsplit(url).path


def _follow_ups(rt, title_part: str = "follow-up"):
    return [
        e
        for e in rt.providers["sandbox"].events(REP)
        if title_part in e.title and e.status != "cancelled"
    ]


async def _results(rt) -> int:
    return await rt.db.run(lambda s: s.scalar(select(func.count()).select_from(ActionResult)))


async def test_every_nudge_with_slots_carries_its_actions(api, rt, sim):
    _, nudge = await _nudged(api, rt, sim)
    actions = nudge["actions"]
    slots = nudge["suggested_slots"]
    assert slots
    assert [a["kind"] for a in actions] == ["send_invite"] * len(slots) + ["snooze", "waive"]
    assert [a["slot"] for a in actions[: len(slots)]] == slots
    for a in actions:
        assert a["url"].startswith(rt.settings.public_url.rstrip("/") + "/actions/")
        assert a["label"]
        token = a["url"].rsplit("/", 1)[1]
        assert nudge["id"] not in token and "send_invite" not in token  # opaque
    assert len({a["url"] for a in actions}) == len(actions)


async def test_get_shows_and_changes_nothing_post_sends_once(api, rt, sim):
    first, nudge = await _nudged(api, rt, sim)
    send = nudge["actions"][0]
    sb = rt.providers["sandbox"]
    before = len(sb.events(REP))
    head = await api.head(_path(send["url"]))
    assert head.status_code == 200 and head.content == b""
    for _ in range(2):  # a mail scanner, then the rep
        page = await api.get(_path(send["url"]), headers={"Authorization": ""})
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        assert '<form method="post">' in page.text and "<script" not in page.text
        assert "Acme discovery: follow-up and next steps" in page.text
        assert DANA in page.text and BOB in page.text
        assert "CET" in page.text  # the slot in the rep's zone
    assert len(sb.events(REP)) == before and await _results(rt) == 0
    meeting = (await api.get(f"/v1/meetings/{nudge['meeting']['id']}")).json()
    assert meeting["state"] == "needs_next_step"

    done = await api.post(_path(send["url"]), headers={"Authorization": ""})
    assert done.status_code == 200, done.text
    assert "The invite is sent." in done.text
    (created,) = _follow_ups(rt)
    assert created.start == datetime.fromisoformat(send["slot"]["start"])
    assert {a.email for a in created.attendees} == {REP, DANA, BOB}
    assert "Acme discovery" in created.description
    assert "work for you" not in created.description.lower()
    assert created.video_link and created.video_link in done.text
    meeting = (await api.get(f"/v1/meetings/{nudge['meeting']['id']}")).json()
    assert meeting["state"] == "invited" and meeting["follow_up"]["event_id"] == created.event_id

    again = await api.post(_path(send["url"]))
    assert again.status_code == 200 and "nothing changed" in again.text
    shown = await api.get(_path(send["url"]))
    assert shown.status_code == 200 and "nothing changed" in shown.text
    assert len(_follow_ups(rt)) == 1


async def test_another_slot_of_the_same_nudge_moves_the_follow_up(api, rt, sim):
    _, nudge = await _nudged(api, rt, sim)
    first, second = nudge["actions"][0], nudge["actions"][1]
    assert (await api.post(_path(first["url"]))).status_code == 200
    (created,) = _follow_ups(rt)
    page = await api.get(_path(second["url"]))
    assert "is moved to this time" in page.text
    moved = await api.post(_path(second["url"]))
    assert moved.status_code == 200 and "The follow-up is moved." in moved.text
    (after,) = _follow_ups(rt)
    assert after.event_id == created.event_id
    assert after.start == datetime.fromisoformat(second["slot"]["start"])


async def test_a_declined_follow_up_is_moved_never_doubled(api, rt, sim):
    _, nudge = await _nudged(api, rt, sim)
    assert (await api.post(_path(nudge["actions"][0]["url"]))).status_code == 200
    (created,) = _follow_ups(rt)
    rt.providers["sandbox"].respond(REP, created.event_id, DANA, "declined")
    await sim.run_until(sim.clock.now() + timedelta(minutes=1))
    items = (await api.get("/v1/nudges")).json()["items"]
    declined = next(n for n in items if n["kind"] == "follow_up_declined")
    # The first nudge's actions belong to the cycle before: superseded.
    old = await api.get(_path(nudge["actions"][1]["url"]))
    assert old.status_code == 409 and "newer nudge" in old.text
    send = declined["actions"][0]
    page = await api.get(_path(send["url"]))
    assert "The declined follow-up is moved to this time" in page.text
    done = await api.post(_path(send["url"]))
    assert done.status_code == 200, done.text
    (after,) = _follow_ups(rt)
    assert after.event_id == created.event_id
    assert after.start == datetime.fromisoformat(send["slot"]["start"])
    assert {a.email: a.response for a in after.attendees}[DANA] == "needs_action"
    meeting = (await api.get(f"/v1/meetings/{nudge['meeting']['id']}")).json()
    assert meeting["state"] == "invited"


async def test_forged_expired_and_superseded_tokens_say_why(api, rt, sim):
    _, nudge = await _nudged(api, rt, sim)
    url = _path(nudge["actions"][0]["url"])
    token = url.rsplit("/", 1)[1]
    forged = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    for bad in (f"/actions/{forged}", "/actions/nonsense", f"/actions/{'x' * 5000}"):
        for method in ("GET", "POST"):
            r = await api.request(method, bad)
            assert r.status_code == 404, (bad[:40], method, r.status_code)
            assert "not valid" in r.text
    assert _follow_ups(rt) == []

    waive = nudge["actions"][-1]
    r = await api.post(f"/v1/meetings/{nudge['meeting']['id']}/waive", json={"reason": "x"})
    assert r.status_code == 200
    for a in (nudge["actions"][0], waive):
        r = await api.get(_path(a["url"]))
        assert r.status_code == 409 and "no longer applies" in r.text
        r = await api.post(_path(a["url"]))
        assert r.status_code == 409
    assert _follow_ups(rt) == []

    sim.clock.set(START + timedelta(days=20))
    r = await api.get(url)
    assert r.status_code == 410 and "expired" in r.text


async def test_snooze_and_waive_act_once_in_the_reps_locale(api, rt, sim):
    _, nudge = await _nudged(api, rt, sim, locale="fr")
    snooze, waive = nudge["actions"][-2], nudge["actions"][-1]
    assert snooze["label"] == "Reporter d’un jour"
    page = await api.get(_path(snooze["url"]))
    assert page.status_code == 200 and 'lang="fr"' in page.text and "Reporter" in page.text
    mid = nudge["meeting"]["id"]
    assert (await api.get(f"/v1/meetings/{mid}")).json()["snoozed_until"] is None
    r = await api.post(_path(snooze["url"]))
    assert r.status_code == 200 and "Rappel reporté" in r.text
    until = (await api.get(f"/v1/meetings/{mid}")).json()["snoozed_until"]
    assert datetime.fromisoformat(until) == sim.clock.now() + timedelta(days=1)
    r = await api.post(_path(waive["url"]))
    assert r.status_code == 200 and "sans suivi" in r.text
    assert (await api.get(f"/v1/meetings/{mid}")).json()["state"] == "waived"
    r = await api.post(_path(waive["url"]))
    assert r.status_code == 200 and "déjà fait" in r.text


async def test_a_busy_slot_is_refused_with_a_page(api, rt, sim):
    _, nudge = await _nudged(api, rt, sim)
    send = nudge["actions"][0]
    start = datetime.fromisoformat(send["slot"]["start"])
    rt.providers["sandbox"].put_event(
        REP, event(start - timedelta(minutes=15), guests=("carl@seller.io",), title="Internal")
    )
    await sim.run_until(sim.clock.now())
    r = await api.post(_path(send["url"]))
    assert r.status_code == 409 and "busy" in r.text
    assert _follow_ups(rt) == [] and await _results(rt) == 0


async def test_a_provider_refusal_leaves_nothing_and_can_be_retried(api, rt, sim):
    _, nudge = await _nudged(api, rt, sim)
    send = nudge["actions"][0]
    sb = rt.providers["sandbox"]
    sb.fail_next = [Unavailable("sandbox: down for maintenance")]
    r = await api.post(_path(send["url"]))
    assert r.status_code == 503 and "try again" in r.text.lower()
    assert '<form method="post">' in r.text  # the retry button
    assert _follow_ups(rt) == [] and await _results(rt) == 0
    r = await api.post(_path(send["url"]))
    assert r.status_code == 200 and "The invite is sent." in r.text
    assert len(_follow_ups(rt)) == 1


async def test_racing_clicks_create_one_event(api, rt, sim):
    _, nudge = await _nudged(api, rt, sim)
    a, b = nudge["actions"][0], nudge["actions"][1]
    answers = await asyncio.gather(
        api.post(_path(a["url"])), api.post(_path(a["url"])), api.post(_path(b["url"]))
    )
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    assert len(_follow_ups(rt)) == 1


async def test_schedule_without_body_sends_the_same_invitation(api, rt, sim):
    _, nudge = await _nudged(api, rt, sim)
    slot = nudge["suggested_slots"][0]
    mid = nudge["meeting"]["id"]
    headers = {"Idempotency-Key": "k-1"}
    r1 = await api.post(
        f"/v1/meetings/{mid}/schedule", json={"start": slot["start"]}, headers=headers
    )
    assert r1.status_code == 201, r1.text
    r2 = await api.post(
        f"/v1/meetings/{mid}/schedule", json={"start": slot["start"]}, headers=headers
    )
    assert r2.status_code == 201 and r2.json() == r1.json()
    (created,) = _follow_ups(rt)
    assert created.title == "Acme discovery: follow-up and next steps"
    assert {a.email for a in created.attendees} == {REP, DANA, BOB}
    assert created.video_link
    other = nudge["suggested_slots"][1]["start"]
    r3 = await api.post(f"/v1/meetings/{mid}/schedule", json={"start": other}, headers=headers)
    assert r3.status_code == 422 and "Idempotency-Key" in r3.json()["detail"]
    waived = await api.post(f"/v1/meetings/{mid}/waive", json={"reason": "lost"})
    assert waived.status_code == 200
    r4 = await api.post(f"/v1/meetings/{mid}/schedule", json={"start": other})
    assert r4.status_code == 409 and "waived" in r4.json()["detail"]
    saturday = (START + timedelta(days=5, hours=2)).isoformat()  # Saturday 11:00 Paris
    r5 = await api.post(f"/v1/meetings/{mid}/schedule", json={"start": saturday})
    assert r5.status_code == 409


async def test_the_send_lock_is_one_holder_across_replicas(rt):
    from app.meetings.repository import claim_action, release_action

    wall = START
    args = {"meeting_id": "m1", "now": wall, "stale": wall - timedelta(minutes=2)}
    assert await rt.db.run(claim_action, "send:m1", owner="replica-a", **args)
    assert not await rt.db.run(claim_action, "send:m1", owner="replica-b", **args)
    # A holder that died is taken over once its claim is stale.
    later = {"meeting_id": "m1", "now": wall + timedelta(minutes=3), "stale": wall + H}
    assert await rt.db.run(claim_action, "send:m1", owner="replica-b", **later)
    await rt.db.run(release_action, "send:m1", "replica-a")  # not its lock any more
    assert not await rt.db.run(claim_action, "send:m1", owner="replica-a", **args)
    await rt.db.run(release_action, "send:m1", "replica-b")
    assert await rt.db.run(claim_action, "send:m1", owner="replica-a", **args)


async def test_video_false_sends_no_video_link(api, rt, sim):
    from policies.loader import parse_policies

    rt.policies = parse_policies(
        "policies:\n  - name: plain\n    invite_within: PT2H\n    accept_within: P2D\n"
        "    horizon: P14D\n    follow_up_duration: PT15M\n    escalate_after: P3D\n"
        "    video: false\n"
    )
    _, nudge = await _nudged(api, rt, sim)
    page = await api.get(_path(nudge["actions"][0]["url"]))
    assert "No video link" in page.text
    assert (await api.post(_path(nudge["actions"][0]["url"]))).status_code == 200
    (created,) = _follow_ups(rt)
    assert created.video_link is None
    assert "video" not in created.description.lower()


@pytest.mark.parametrize(
    ("failure", "status"),
    [
        (AuthFailed("sandbox: 403 forbidden"), 502),
        (Conflict("sandbox: 409 conflict"), 503),
        (Unavailable("sandbox: timed out"), 503),
    ],
)
async def test_a_refused_insert_or_patch_leaves_the_calendar_as_it_was(
    api, rt, sim, failure, status
):
    _, nudge = await _nudged(api, rt, sim)
    sb = rt.providers["sandbox"]
    first, second = nudge["actions"][0], nudge["actions"][1]
    sb.fail_calls["create_event"] = [failure]
    r = await api.post(_path(first["url"]))
    assert r.status_code == status and "Nothing was sent" in r.text
    assert _follow_ups(rt) == [] and await _results(rt) == 0
    mid = nudge["meeting"]["id"]
    assert (await api.get(f"/v1/meetings/{mid}")).json()["state"] == "needs_next_step"
    assert (await api.post(_path(first["url"]))).status_code == 200  # retried: sent
    (created,) = _follow_ups(rt)

    sb.fail_calls["update_event"] = [failure]
    r = await api.post(_path(second["url"]))
    assert r.status_code == status
    (still,) = _follow_ups(rt)
    assert (still.event_id, still.start) == (created.event_id, created.start)
    assert (await api.post(_path(second["url"]))).status_code == 200  # retried: moved
    (moved,) = _follow_ups(rt)
    assert moved.event_id == created.event_id
    assert moved.start == datetime.fromisoformat(second["slot"]["start"])


async def test_a_follow_up_sent_another_way_supersedes_the_nudges_actions(api, rt, sim):
    _, nudge = await _nudged(api, rt, sim)
    start = datetime.fromisoformat(nudge["suggested_slots"][2]["start"])
    rt.providers["sandbox"].put_event(REP, event(start, minutes=15, title="By hand"))
    await sim.run_until(sim.clock.now() + timedelta(minutes=1))
    for a in nudge["actions"]:
        r = await api.get(_path(a["url"]))
        assert r.status_code == 409 and "sent another way" in r.text, a["kind"]
        assert (await api.post(_path(a["url"]))).status_code == 409
    assert _follow_ups(rt) == []
