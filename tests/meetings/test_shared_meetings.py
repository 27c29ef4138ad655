"""One meeting on several registered reps' calendars (the same iCalUID) is one prospect
meeting for the rule (CONTRACT.md "The rule holds every time"): a follow-up on any of
their calendars counts for all; nudges go to the organiser when registered, else to the
rep registered first; ``GET /v1/meetings`` shows it once per rep, with the same state.
"""

from __future__ import annotations

from datetime import timedelta

from app.meetings.service import list_meetings
from tests.conftest import START
from tests.helpers.calendar import event, meeting_of, register

H, D, M = timedelta(hours=1), timedelta(days=1), timedelta(minutes=1)
AE, SE = "anne@seller.io", "sam@seller.io"
DANA = "dana.smith@acme.com"


def discovery(organiser: str, guests: dict[str, str], uid: str = "uid-discovery"):  # type: ignore[no-untyped-def]
    return event(START + H, rep=organiser, guests=guests, ical_uid=uid)


async def states(rt, *rep_ids: str) -> dict[str, tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Each rep's view of their meetings: id → (title, state)."""
    out = {}
    for rep_id in rep_ids:
        items = await rt.db.run(list_meetings, rep_id=rep_id, state=None, limit=100, offset=0)
        out[rep_id] = [(m.title, m.state) for m in items]
    return out


async def test_ae_organiser_and_se_get_one_meeting_and_one_nudge(rt, sim, channel):
    se = await register(rt, email=SE)  # registered first, but the AE organises
    sim.clock.set(START + M)
    ae = await register(rt, email=AE)
    sb = rt.providers["sandbox"]
    guests = {SE: "accepted", DANA: "needs_action"}
    sb.put_event(AE, discovery(AE, guests))
    sb.put_event(SE, discovery(AE, guests))
    await sim.run_until(START + 5 * H)
    assert [(o.payload["kind"], o.payload["rep"]["email"]) for o in channel.sent] == [
        ("no_next_step", AE)
    ]
    views = await states(rt, ae["id"], se["id"])
    assert views == {
        ae["id"]: [("Acme discovery", "needs_next_step")],
        se["id"]: [("Acme discovery", "needs_next_step")],
    }
    await sim.run_until(START + 10 * D)
    assert channel.kinds() == ["no_next_step"]


async def test_the_se_follow_up_counts_for_the_ae(rt, sim, channel):
    ae = await register(rt, email=AE)
    sim.clock.set(START + M)
    se = await register(rt, email=SE)
    sb = rt.providers["sandbox"]
    guests = {SE: "accepted", DANA: "needs_action"}
    ae_copy = sb.put_event(AE, discovery(AE, guests))
    se_copy = sb.put_event(SE, discovery(AE, guests))
    await sim.run_until(START + 2 * H + 30 * M)  # within invite_within
    # The SE books the technical follow-up with Dana on their own calendar only.
    fu = sb.put_event(SE, event(START + 2 * D, rep=SE, title="Technical deep dive"))
    await sim.run_until(sim.clock.now())
    ae_row = await meeting_of(rt, ae["id"], ae_copy.event_id)
    se_row = await meeting_of(rt, se["id"], se_copy.event_id)
    assert (ae_row.state, se_row.state) == ("invited", "invited")
    assert ae_row.follow_up["event_id"] == fu.event_id
    sb.respond(SE, fu.event_id, DANA, "accepted")
    await sim.run_until(START + 10 * D)
    ae_row = await meeting_of(rt, ae["id"], ae_copy.event_id)
    se_row = await meeting_of(rt, se["id"], se_copy.event_id)
    assert (ae_row.state, se_row.state) == ("secured", "secured")
    assert ae_row.follow_up["responses"] == {DANA: "accepted"}
    about_discovery = [o for o in channel.sent if o.payload["meeting"]["title"] == "Acme discovery"]
    assert about_discovery == []  # the SE's follow-up answered the rule for both


async def test_organiser_not_registered_nudges_go_to_the_rep_registered_first(rt, sim, channel):
    se = await register(rt, email=SE)
    sim.clock.set(START + M)
    ae = await register(rt, email=AE)
    sb = rt.providers["sandbox"]
    # Dana booked it through her own scheduling tool: neither rep organises.
    guests = {AE: "accepted", SE: "accepted"}
    for rep in (AE, SE):
        sb.put_event(
            rep,
            event(START + H, rep=DANA, guests=guests, ical_uid="uid-booked", title="Acme intro"),
        )
    await sim.run_until(START + 5 * H)
    assert [(o.payload["kind"], o.payload["rep"]["email"]) for o in channel.sent] == [
        ("no_next_step", SE)
    ]
    views = await states(rt, ae["id"], se["id"])
    assert views[ae["id"]] == views[se["id"]] == [("Acme intro", "needs_next_step")]


async def test_waiving_on_one_rep_waives_the_meeting_for_all(rt, sim, channel):
    from app.meetings.service import unwaive, waive

    ae = await register(rt, email=AE)
    sim.clock.set(START + M)
    se = await register(rt, email=SE)
    sb = rt.providers["sandbox"]
    guests = {SE: "accepted", DANA: "needs_action"}
    ae_copy = sb.put_event(AE, discovery(AE, guests))
    se_copy = sb.put_event(SE, discovery(AE, guests))
    await sim.run_until(START + 2 * H)
    se_row = await meeting_of(rt, se["id"], se_copy.event_id)
    await rt.db.run(waive, rt, se_row.id, "partner-led deal")
    await sim.run_until(START + 3 * D)
    assert channel.sent == []
    views = await states(rt, ae["id"], se["id"])
    assert views[ae["id"]] == views[se["id"]] == [("Acme discovery", "waived")]
    # Undone on the AE's copy: open again for both.
    ae_row = await meeting_of(rt, ae["id"], ae_copy.event_id)
    await rt.db.run(unwaive, rt, ae_row.id)
    views = await states(rt, ae["id"], se["id"])
    assert views[ae["id"]] == views[se["id"]] == [("Acme discovery", "needs_next_step")]
