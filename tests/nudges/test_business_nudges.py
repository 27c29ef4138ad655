"""Business time in the pipeline: windows in working time, quiet hours on the outbox
(escalations too: the manager shares the team's week), policies per stage."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from app.accounts.schemas import AccountIn
from app.accounts.service import upsert as put_account
from app.db.models import Delivery, Nudge
from policies.loader import parse_policies
from tests.helpers.calendar import REP, event, register, state_of

PARIS = ZoneInfo("Europe/Paris")
POLICY = """
policies:
  - name: business
    clock: business
    invite_within: PT2H
    accept_within: P1D
    horizon: P14D
    follow_up_duration: PT30M
    escalate_after: PT4H
    stages: [prospect]
"""


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS).astimezone(UTC)  # type: ignore[misc]


def outbox(session):  # type: ignore[no-untyped-def]
    return [
        (kind, due)
        for kind, due in session.execute(
            select(Nudge.kind, Delivery.next_attempt_at)
            .join(Delivery, Delivery.nudge_id == Nudge.id)
            .order_by(Nudge.created_at)
        )
    ]


async def test_friday_meeting_is_nudged_monday_and_escalated_in_working_time(rt, sim, channel):  # type: ignore[no-untyped-def]
    rt.policies = parse_policies(POLICY)
    await register(rt, manager_email="boss@seller.io")
    friday = paris(2026, 11, 27, 16, 0)
    rt.providers["sandbox"].put_event(REP, event(friday))  # 16:00–17:00 Paris
    await sim.run_until(paris(2026, 11, 30, 9, 59))
    assert channel.kinds() == []
    await sim.run_until(paris(2026, 11, 30, 10, 0))  # 1 h on Friday + 1 h on Monday
    assert channel.kinds() == ["no_next_step"]
    window = channel.sent[0].payload["window"]
    assert datetime.fromisoformat(window["closed_at"]) == paris(2026, 11, 30, 10, 0)
    # Four working hours unanswered: the manager hears of it at 14:00, not at 14:00 on
    # the wall clock of some other week.
    await sim.run_until(paris(2026, 11, 30, 13, 59))
    assert channel.kinds() == ["no_next_step"]
    await sim.run_until(paris(2026, 11, 30, 14, 0))
    assert channel.kinds() == ["no_next_step", "escalation"]
    assert channel.sent[1].payload["recipient"] == "boss@seller.io"


async def test_an_escalation_due_in_the_evening_waits_for_the_teams_morning(rt, sim, channel):  # type: ignore[no-untyped-def]
    rt.policies = parse_policies(POLICY.replace("escalate_after: PT4H", "escalate_after: PT8H"))
    await register(rt, manager_email="boss@seller.io")
    rt.providers["sandbox"].put_event(REP, event(paris(2026, 11, 30, 14, 0)))  # Mon 14–15
    await sim.run_until(paris(2026, 12, 1, 12, 0))
    # no_next_step Mon 17:00; 8 working hours later: 1 h Monday + 7 h Tuesday = Tue 16:00.
    assert channel.kinds() == ["no_next_step"]
    await sim.run_until(paris(2026, 12, 1, 16, 0))
    assert channel.kinds() == ["no_next_step", "escalation"]


async def test_a_saturday_decline_waits_in_the_outbox_for_monday_morning(rt, sim, channel):  # type: ignore[no-untyped-def]
    rt.policies = parse_policies(POLICY)
    await register(rt)
    sb = rt.providers["sandbox"]
    sb.put_event(REP, event(paris(2026, 11, 26, 10, 0)))  # Thursday
    follow_up = event(paris(2026, 12, 2, 10, 0), title="Acme next step")
    sb.put_event(REP, follow_up)
    await sim.run_until(paris(2026, 11, 28, 11, 0))  # Saturday
    sb.respond(REP, follow_up.event_id, "dana.smith@acme.com", "declined")
    await sim.run_until(paris(2026, 11, 28, 11, 5))
    rows = [due for kind, due in await rt.db.run(outbox) if kind == "follow_up_declined"]
    assert rows == [paris(2026, 11, 30, 9, 0)]  # its not-before: Monday 09:00
    assert channel.kinds() == ["not_accepted"]  # Friday's, in working time
    await sim.run_until(paris(2026, 11, 30, 8, 59))
    assert channel.kinds() == ["not_accepted"]
    await sim.run_until(paris(2026, 11, 30, 9, 1))
    assert channel.kinds() == ["not_accepted", "follow_up_declined"]


async def test_a_customers_meeting_is_tracked_not_nudged_unless_a_policy_covers_it(
    rt, sim, channel
):  # type: ignore[no-untyped-def]
    rt.policies = parse_policies(POLICY)
    rep = await register(rt)
    await rt.db.run(put_account, rt, "acme.com", AccountIn(stage="customer"))
    qbr = event(paris(2026, 11, 30, 10, 0), title="Acme QBR")
    rt.providers["sandbox"].put_event(REP, qbr)
    await sim.run_until(paris(2026, 12, 4, 18, 0))
    assert await state_of(rt, rep["id"], qbr.event_id) == "needs_next_step"
    assert channel.kinds() == []
    # A second policy for customers: now the same kind of meeting follows it.
    rt.policies = parse_policies(
        POLICY
        + """
  - name: customers
    invite_within: P3D
    accept_within: P3D
    horizon: P30D
    follow_up_duration: PT30M
    escalate_after: P5D
    stages: [customer]
"""
    )
    review = event(paris(2026, 12, 7, 10, 0), title="Acme review")
    rt.providers["sandbox"].put_event(REP, review)
    await sim.run_until(paris(2026, 12, 10, 10, 59))
    assert not [s for s in channel.sent if s.payload["meeting"]["title"] == "Acme review"]
    await sim.run_until(paris(2026, 12, 10, 11, 0))  # P3D on the wall clock
    (review_nudge,) = [s for s in channel.sent if s.payload["meeting"]["title"] == "Acme review"]
    assert review_nudge.payload["kind"] == "no_next_step"
    assert review_nudge.payload["policy"] == "customers"
