"""Account health through the engine: histories built on the sandbox calendar, read at
registration and recorded as they change; signals, evidence, level, the at-risk nudge,
the CRM event, deletion and retention — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from app.accounts import service as health_service
from app.accounts.schemas import AccountIn
from app.accounts.service import upsert as put_account
from app.db.models import AccountHealthRow, AccountHistory, Delivery, Nudge
from app.delivery.channels import WebhookChannel, verify_signature
from app.main import create_app
from tests.conftest import START
from tests.helpers.calendar import REP, event, register

D, H = timedelta(days=1), timedelta(hours=1)
DANA, BOB, LEE = "dana.smith@acme.com", "bob.jones@acme.com", "lee.wong@acme.com"
CONTACTS = [
    {"email": DANA, "name": "Dana Smith", "role": "decision_maker"},
    {"email": LEE, "name": "Lee Wong", "role": "champion"},
    {"email": BOB, "role": "user"},
]


@pytest.fixture
async def api(rt):
    app = create_app(runtime=rt, start_scheduler=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers={"Authorization": "Bearer test-key"}
    ) as client:
        yield client


def past_weekly(
    sb,
    weeks: int,
    *,
    last_days_ago: float,
    guests: dict[str, str],
    prefix: str,
    title: str = "Acme weekly",
) -> list[str]:
    """Weekly meetings that already happened, as the rep's calendar still shows them."""
    ids = []
    for i in range(weeks):
        start = START - timedelta(days=last_days_ago) - (weeks - 1 - i) * 7 * D
        ev = event(
            start, guests=guests, title=title, event_id=f"{prefix}{i}", created=start - 3 * D
        )
        sb.put_event(REP, ev)
        ids.append(ev.event_id)
    return ids


async def health_of(rt, domain: str = "acme.com") -> dict:  # type: ignore[no-untyped-def]
    return (await rt.db.run(health_service.read_health, rt, domain)).model_dump(mode="json")


async def test_a_healthy_customer_with_a_busy_calendar_has_no_signal(rt, sim, api):
    sb = rt.providers["sandbox"]
    everyone = {DANA: "accepted", LEE: "accepted", BOB: "accepted"}
    past_weekly(sb, 12, last_days_ago=3, guests=everyone, prefix="mon")
    past_weekly(sb, 12, last_days_ago=1, guests={BOB: "accepted", DANA: "accepted"}, prefix="wed")
    sb.put_event(REP, event(START - 2 * D, guests=("ops@seller.io",), title="Internal sync"))
    sb.put_event(REP, event(START + 2 * D, guests=everyone, event_id="next"))
    await rt.db.run(put_account, rt, "acme.com", AccountIn(stage="customer", contacts=CONTACTS))
    await register(rt)
    sb.move_event(REP, "next", START + 2 * D + 2 * H)  # one small reschedule: business as usual
    await sim.run_until(START + 3 * D)
    r = await api.get("/v1/accounts/acme.com/health")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["domain"] == "acme.com" and body["signals"] == []
    assert body["score"] == 100 and body["level"] == "healthy" and body["computed_at"]
    assert (await api.get("/v1/accounts?level=healthy")).json()["items"][0]["domain"] == "acme.com"
    assert (await api.get("/v1/accounts?level=at_risk")).json()["items"] == []


async def test_the_past_is_read_at_registration_moved_instances_included(rt, sim):
    sb = rt.providers["sandbox"]
    start = START - 20 * D
    sb.put_event(
        REP,
        event(
            start,
            event_id="series_1",
            recurring_event_id="series",
            original_start=start - 2 * D,
            created=start - 30 * D,
        ),
    )
    sb.put_event(REP, event(START - 420 * D, event_id="too-old"))  # beyond history_window
    await register(rt)
    rows = await rt.db.run(
        lambda s: [
            (r.event_id, r.kind, r.old_start, r.start, r.at)
            for r in s.scalars(select(AccountHistory).order_by(AccountHistory.id))
        ]
    )
    assert [(e, k) for e, k, *_ in rows] == [("series_1", "seen"), ("series_1", "moved")]
    assert rows[1][2] == start - 2 * D and rows[1][3] == start
    assert rows[0][4] == start - 30 * D  # when it was, not when we read it


async def test_changes_are_recorded_as_they_happen(rt, sim):
    sb = rt.providers["sandbox"]
    await register(rt)
    sb.put_event(
        REP, event(START + 2 * D, guests={DANA: "needs_action", BOB: "needs_action"}, event_id="e1")
    )
    await sim.settle()
    sb.move_event(REP, "e1", START + 5 * D)
    sb.respond(REP, "e1", DANA, "declined")
    await sim.settle()
    ev = sb.calendar(REP).events["e1"]
    sb.put_event(REP, replace(ev, attendees=(*ev.attendees[:1], *ev.attendees[2:])))  # Dana removed
    await sim.settle()
    sb.cancel_event(REP, "e1")
    await sim.settle()
    rows = await rt.db.run(
        lambda s: [
            (r.kind, r.actor_side, r.detail, r.cancelled)
            for r in s.scalars(select(AccountHistory).order_by(AccountHistory.id))
        ]
    )
    kinds = [k for k, *_ in rows]
    # Dana's answer and the move came in one sync: the answer first ("can we move this?").
    assert kinds == ["seen", "response", "moved", "attendees", "cancelled"]
    assert rows[2][1] == "internal"  # the rep organises: we moved it
    assert rows[1][2] == {"from": "needs_action", "to": "declined"}
    assert rows[3][2] == {"added": [], "removed": [DANA]}
    assert rows[4][3] is True


async def test_postponements_by_the_customer_are_polite_procrastination(rt, sim, api):
    sb = rt.providers["sandbox"]
    past_weekly(sb, 8, last_days_ago=7, guests={DANA: "accepted"}, prefix="w")
    await register(rt)
    # The customer organises the next meetings, and keeps pushing them out.
    for eid, days in (("a", 2), ("b", 9)):
        sb.put_event(
            REP,
            replace(
                event(START + days * D, guests={DANA: "accepted"}, event_id=eid),
                organizer_email=DANA,
            ),
        )
    await sim.settle()
    sb.move_event(REP, "a", START + 9 * D)
    await sim.run_until(START + D)
    sb.move_event(REP, "a", START + 16 * D)
    sb.move_event(REP, "b", START + 23 * D)
    await sim.run_until(START + 2 * D)
    body = (await api.get("/v1/accounts/acme.com/health")).json()
    s = next(s for s in body["signals"] if s["kind"] == "meetings_postponed")
    assert s["evidence"] == ["a", "b"] and s["details"]["days_slipped"] == 28.0
    assert s["details"]["postponements"] == 3 and s["severity"] in ("medium", "high")
    assert "Polite procrastination" in s["explanation"]
    assert body["score"] < 100


async def test_a_decision_maker_drops_off_and_the_owner_is_nudged_once(rt, sim, channel):
    sb = rt.providers["sandbox"]
    past_weekly(
        sb,
        9,
        last_days_ago=28,
        guests={DANA: "accepted", LEE: "accepted", BOB: "accepted"},
        prefix="w",
    )
    late = past_weekly(
        sb, 3, last_days_ago=7, guests={BOB: "accepted", DANA: "declined"}, prefix="late"
    )
    owner = "paul.martin@seller.io"
    await rt.db.run(
        put_account,
        rt,
        "acme.com",
        AccountIn(
            name="Acme Corp",
            stage="customer",
            owner_email=owner,
            contacts=CONTACTS,
            renewal_date=(START + 30 * D).date(),
        ),
    )
    await register(rt, email=owner, locale="fr")  # the owner is a rep: the message in French
    await register(rt)
    await sim.run_until(START + H)
    health = await health_of(rt)
    assert health["level"] == "at_risk", health
    absent = next(s for s in health["signals"] if s["kind"] == "decision_makers_absent")
    assert absent["evidence"] == late and absent["since"] == (START - 21 * D).isoformat()
    # The owner reads French: every explanation is whole French.
    assert absent["explanation"].startswith("Dana Smith (décideur) et Lee Wong (champion) venaient")
    assert "Dana Smith a décliné" in absent["explanation"]
    assert health["renewal_near"] is True
    nudges = [o.payload for o in channel.sent if o.payload["kind"] == "account_at_risk"]
    assert len(nudges) == 1
    p = nudges[0]
    assert p["rep"]["email"] == owner and p["recipient"] == owner
    assert p["account"]["domain"] == "acme.com" and p["account"]["level"] == "at_risk"
    assert p["meeting"] is None or p["meeting"]["account_domain"] == "acme.com"
    assert p["draft_invite"]["attendees"] == [DANA]
    assert p["draft_invite"]["body"].startswith(
        "Dana, I get the feeling we haven't been hitting the mark for you lately."
    )
    assert "where are we falling short?" in p["draft_invite"]["body"]
    # It names what the signals saw, and proposes a slot like every other draft.
    assert (
        "you and Lee Wong haven't been able to join our last 3 meetings"
        in (p["draft_invite"]["body"])
    )
    assert p["suggested_slots"] and p["draft_invite"]["language"] == "en"
    first = datetime.fromisoformat(p["suggested_slots"][0]["start"])
    assert first > START and "Would Monday, November 23 at" not in p["draft_invite"]["body"]
    assert "work for a 20-minute call?" in p["draft_invite"]["body"]
    assert "est désormais à risque" in p["message"] and "Décideurs absents" in p["message"]
    # The owner reads French, the account's people English (no language on record).
    assert "Il est en anglais, la langue de vos interlocuteurs." in p["message"]
    assert "Il propose un créneau libre dans votre agenda" in p["message"]
    # Recomputed every day and on each change: still one nudge for this worsening.
    sb.put_event(REP, event(START + 2 * D, guests={BOB: "accepted"}, event_id="more"))
    await sim.run_until(START + 3 * D)
    assert [o.payload["kind"] for o in channel.sent].count("account_at_risk") == 1
    keys = await rt.db.run(
        lambda s: list(s.scalars(select(Nudge.dedupe_key).where(Nudge.kind == "account_at_risk")))
    )
    assert keys == ["account:acme.com:at_risk:1"]


async def test_the_crm_gets_a_signed_risk_changed_event_through_the_outbox(rt, sim, api):
    received: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    rt.channels["webhook"] = WebhookChannel("https://crm.example/hook", "s3cret", client=client)
    await register(rt)
    await rt.db.run(
        put_account, rt, "acme.com", AccountIn(stage="customer", owner_email="o@seller.io")
    )
    r = await api.post(
        "/v1/accounts/acme.com/signals",
        json={
            "kind": "small_talk_gone",
            "occurred_at": (START - D).isoformat(),
            "note": "answers got short",
        },
    )
    assert r.status_code == 201, r.text
    for kind in ("feature_requests_stopped", "champion_left", "budget_frozen"):
        await api.post(
            "/v1/accounts/acme.com/signals",
            json={"kind": kind, "occurred_at": (START - D).isoformat()},
        )
    await sim.settle()
    bodies = [json.loads(req.content) for req in received]
    events = [b for b in bodies if b.get("type") == "account.risk_changed"]
    assert len(events) == 1
    e = events[0]
    assert e["account"]["level"] == "watch" and e["previous_level"] is None
    assert {s["kind"] for s in e["account"]["signals"]} >= {"small_talk_gone", "budget_frozen"}
    req = next(q for q in received if json.loads(q.content).get("type") == "account.risk_changed")
    assert verify_signature(
        req.headers["X-NextStep-Signature"], req.content, "s3cret", now=int(time.time())
    )  # the channel signs on the wall clock
    assert req.headers["Idempotency-Key"] == e["id"]
    assert any(b.get("kind") == "account_at_risk" for b in bodies)  # the owner's nudge too
    listed = (await api.get("/v1/nudges")).json()["items"]
    assert [n["kind"] for n in listed] == ["account_at_risk"]  # the event is not a nudge
    await client.aclose()


async def test_health_api_errors_and_account_deletion(rt, sim, api):
    assert (
        await api.get("/v1/accounts/acme.com/health", headers={"Authorization": ""})
    ).status_code == 401
    r = await api.get("/v1/accounts/nowhere.com/health")
    assert r.status_code == 404 and "nowhere.com" in r.json()["detail"]
    assert (await api.get("/v1/accounts/not a domain/health")).status_code == 422
    assert (await api.get("/v1/accounts?level=doomed")).status_code == 422
    for bad in (
        {"kind": "x"},
        {"occurred_at": START.isoformat()},
        {"kind": "Bad Kind", "occurred_at": START.isoformat()},
        {"kind": "x", "occurred_at": "2026-11-23T10:00:00"},
    ):
        r = await api.post("/v1/accounts/acme.com/signals", json=bad)
        assert r.status_code == 422 and r.json()["detail"], bad
    # An account may be PUT before any rep exists: its health is known (and healthy).
    assert (await api.put("/v1/accounts/acme.com", json={"stage": "customer"})).status_code == 200
    assert (await api.get("/v1/accounts/acme.com/health")).json()["level"] == "healthy"
    sb = rt.providers["sandbox"]
    past_weekly(sb, 4, last_days_ago=3, guests={DANA: "accepted"}, prefix="w")
    await register(rt)
    await sim.settle()
    assert (
        await rt.db.run(lambda s: s.scalar(select(func.count()).select_from(AccountHistory))) == 4
    )
    assert (await api.delete("/v1/accounts/acme.com")).status_code == 204
    assert (await api.delete("/v1/accounts/acme.com")).status_code == 404
    assert (
        await rt.db.run(lambda s: s.scalar(select(func.count()).select_from(AccountHistory))) == 0
    )
    assert await rt.db.run(lambda s: s.get(AccountHealthRow, "acme.com")) is None


async def test_history_goes_with_the_rep_and_past_its_retention(rt, sim):
    sb = rt.providers["sandbox"]
    past_weekly(sb, 4, last_days_ago=3, guests={DANA: "accepted"}, prefix="w")
    rep = await register(rt)
    count = lambda s: s.scalar(select(func.count()).select_from(AccountHistory))  # noqa: E731
    assert await rt.db.run(count) == 4
    rt.policies = replace(
        rt.policies,
        account_signals=replace(rt.policies.account_signals, retention=timedelta(days=10)),
    )
    assert await rt.db.run(health_service.prune, rt) == 3  # the three older than 10 days
    from app.reps.service import delete

    await delete(rt, rep["id"])
    assert await rt.db.run(count) == 0


async def test_health_is_recomputed_on_change_not_inline(rt, sim):
    """apply_changes only marks the account due; the health job does the work."""
    await register(rt)
    rt.providers["sandbox"].put_event(REP, event(START + D, guests={DANA: "accepted"}))
    await rt.providers["sandbox"].drain()
    from app.sync.service import sync_due

    await sync_due(rt)
    row = await rt.db.run(lambda s: s.get(AccountHealthRow, "acme.com"))
    assert row.due_at == START and row.computed_at is None
    await sim.settle()
    row = await rt.db.run(lambda s: s.get(AccountHealthRow, "acme.com"))
    assert row.computed_at == START and row.due_at == START + D and row.level == "healthy"
    assert await rt.db.run(lambda s: s.scalar(select(func.count()).select_from(Delivery))) >= 0


async def test_one_broken_account_does_not_hold_the_others_back(rt, sim):
    from app.db.models import Account

    for domain in ("acme.com", "globex.com", "initech.com"):
        await rt.db.run(put_account, rt, domain, AccountIn(stage="customer"))

    def corrupt(s):  # type: ignore[no-untyped-def]
        s.get(Account, "globex.com").renewal_date = "not-a-date"

    await rt.db.run(corrupt)
    await sim.settle()
    rows = await rt.db.run(
        lambda s: {
            r.domain: (r.level, r.due_at, r.lease_owner)
            for r in s.scalars(select(AccountHealthRow))
        }
    )
    assert rows["acme.com"][0] == rows["initech.com"][0] == "healthy"
    assert rows["globex.com"] == (None, START + timedelta(minutes=5), None)  # retried later


async def test_a_french_owner_reads_every_signal_in_french(rt, sim, api, channel):
    owner = "camille.martin@seller.io"
    await register(rt, email=owner, locale="fr")
    await register(rt)
    await rt.db.run(
        put_account,
        rt,
        "acme.com",
        AccountIn(stage="customer", owner_email=owner, contacts=CONTACTS),
    )
    for kind, note in (("small_talk_gone", "réponses sèches"), ("budget_frozen", None)):
        body = {"kind": kind, "occurred_at": (START - D).isoformat()}
        if note:
            body["note"] = note
        assert (await api.post("/v1/accounts/acme.com/signals", json=body)).status_code == 201
    await api.post(
        "/v1/accounts/acme.com/signals",
        json={"kind": "exec_sponsor_silent", "occurred_at": (START - 2 * D).isoformat()},
    )
    await sim.settle()
    health = (await api.get("/v1/accounts/acme.com/health")).json()
    texts = {s["kind"]: s["explanation"] for s in health["signals"]}
    assert texts["small_talk_gone"] == (
        "Signalé par le CRM le 22 novembre 2026 : plus de conversation informelle"
        " — réponses sèches."
    )
    assert texts["budget_frozen"] == "Signalé par le CRM le 22 novembre 2026 : budget gelé."
    assert texts["exec_sponsor_silent"].endswith(": « exec_sponsor_silent ».")
    nudge = next(o.payload for o in channel.sent if o.payload["kind"] == "account_at_risk")
    assert "Reported by" not in nudge["message"] and "Signalé par le CRM le" in nudge["message"]
    # An owner who is not a registered rep reads English.
    await rt.db.run(put_account, rt, "acme.com", AccountIn(owner_email="someone@seller.io"))
    await sim.settle()
    health = (await api.get("/v1/accounts/acme.com/health")).json()
    assert health["signals"][0]["explanation"].startswith("Reported by the CRM on November 2")


async def test_the_candid_note_names_what_slipped_in_the_contacts_language(rt, sim, api, channel):
    """Slipped meetings (asked for by the customer) and who stopped coming, in French when
    the CRM says the account's people read French; a slot free on the owner's calendar."""
    sb = rt.providers["sandbox"]
    # Lee's absence alone keeps the account healthy here: the note comes when the
    # postponements join it, and names both.
    signals = rt.policies.account_signals
    weights = {**signals.weights, "decision_makers_absent": 10.0}
    rt.policies = replace(rt.policies, account_signals=replace(signals, weights=weights))
    owner = "paul.martin@seller.io"
    everyone = {DANA: "accepted", LEE: "accepted", BOB: "accepted"}
    past_weekly(sb, 9, last_days_ago=28, guests=everyone, prefix="w")
    past_weekly(sb, 3, last_days_ago=7, guests={BOB: "accepted", LEE: "declined"}, prefix="late")
    for eid, days in (("qbr", 2), ("roadmap", 4)):
        sb.put_event(
            REP, event(START + days * D, guests={DANA: "accepted"}, event_id=eid, title=eid.upper())
        )
    r = await api.put(
        "/v1/accounts/acme.com",
        json={
            "stage": "customer",
            "owner_email": owner,
            "timezone": "Europe/Paris",
            "contacts": CONTACTS,
            "language": "fr",
        },
    )
    assert r.status_code == 200 and r.json()["language"] == "fr"
    bad = await api.put("/v1/accounts/acme.com", json={"language": "de"})
    assert bad.status_code == 422 and "language" in bad.text
    owner_rep = await register(rt, email=owner, timezone="Europe/Paris")
    await register(rt)
    # Dana asks for other times ("declined"), and the rep moves each meeting for her.
    await sim.settle()
    for eid, to in (("qbr", 9), ("roadmap", 11)):
        sb.respond(REP, eid, DANA, "declined")
        sb.move_event(REP, eid, START + to * D)
        await sim.settle()
    sb.respond(REP, "qbr", DANA, "tentative")
    sb.move_event(REP, "qbr", START + 16 * D)
    # The owner's own calendar is busy on the first working morning.
    sb.put_event(owner, event(START + 2 * H, guests=(), title="Board prep", event_id="busy"))
    await sim.run_until(START + H)
    nudge = [o.payload for o in channel.sent if o.payload["kind"] == "account_at_risk"][-1]
    body = nudge["draft_invite"]["body"]
    assert nudge["draft_invite"]["subject"] == "Où ne sommes-nous pas à la hauteur ?"
    assert body.startswith("Bonjour Dana, J'ai le sentiment que nous ne sommes pas")
    assert "« QBR » a glissé du 25 novembre au 9 décembre" in body
    assert "« ROADMAP » a glissé du 27 novembre au 4 décembre" in body
    assert "vous et Lee Wong n'avez pas pu vous joindre à nos 3 dernières réunions" in body
    assert "Seriez-vous disponible " in body and "pour un échange de 20 minutes" in body
    slot = nudge["suggested_slots"][0]
    start = datetime.fromisoformat(slot["start"])
    assert not (START + 2 * H <= start < START + 3 * H)  # never over the owner's busy time
    assert "Il est en anglais" not in nudge["message"]
    assert owner_rep["email"] == owner
    # A contact's own language wins over the account's.
    contacts = [{**CONTACTS[0], "language": "en"}, *CONTACTS[1:]]
    assert (await api.put("/v1/accounts/acme.com", json={"contacts": contacts})).status_code == 200
    from app.accounts.service import recipients_of
    from app.db.models import Account
    from app.nudges.service import draft_language

    account = await rt.db.run(lambda s: s.get(Account, "acme.com"))
    assert draft_language(recipients_of(account), account) == "en"
