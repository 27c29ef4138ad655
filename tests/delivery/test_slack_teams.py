"""Slack as reps use it (a bot's direct messages) and Teams (Adaptive Cards), through
emulators of Slack's Web API and a Teams Workflows webhook, over loopback."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.db.models import Delivery
from app.delivery.channels import Outbound, SlackBotChannel, SlackChannel, TeamsChannel
from app.delivery.channels.slack import render as slack_render
from tests.conftest import START
from tests.emulators.slack import SlackEmulator
from tests.emulators.teams import TeamsEmulator
from tests.helpers.calendar import REP, event, register

H = timedelta(hours=1)
ACTIONS = [
    {"kind": "send_invite", "url": "https://ns.example/a/t1", "label": "Send invite Tue 10:00"},
    {"kind": "send_invite", "url": "https://ns.example/a/t2", "label": "Send invite Wed 15:00"},
    {"kind": "snooze", "url": "https://ns.example/a/t3", "label": "Snooze one day"},
    {"kind": "waive", "url": "https://ns.example/a/t4", "label": "No follow-up needed"},
]


def nudge(**extra: object) -> Outbound:
    payload = {
        "id": "n-1",
        "kind": "no_next_step",
        "rep": {"id": "r1", "email": REP},
        "meeting": {
            "id": "m1",
            "title": "Acme discovery",
            "start": "2026-11-23T09:00:00+00:00",
            "end": "2026-11-23T10:00:00+00:00",
            "account_domain": "acme.com",
            "external_attendees": ["dana.smith@acme.com"],
        },
        "suggested_slots": [
            {"start": "2026-11-24T09:00:00+00:00", "end": "2026-11-24T09:15:00+00:00"}
        ],
        "draft_invite": {
            "subject": "Next step",
            "body": "Hi Dana",
            "attendees": ["dana.smith@acme.com"],
        },
        "message": "No next step booked after “Acme discovery”.",
        **extra,
    }
    return Outbound(
        nudge_id="n-1", payload=payload, recipient=REP, subject="[NextStep] no next step"
    )


@pytest.fixture
def slack():
    emu = SlackEmulator().start()
    yield emu
    emu.stop()


@pytest.fixture
def teams():
    emu = TeamsEmulator().start()
    yield emu
    emu.stop()


def buttons(blocks: list[dict]) -> list[tuple[str, str]]:
    return [
        (e["text"]["text"], e["url"])
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
    ]


async def test_one_renderer_gives_both_slack_channels_the_action_buttons(slack):
    expected = [(a["label"], a["url"]) for a in ACTIONS]
    assert buttons(slack_render(nudge(actions=ACTIONS))["blocks"]) == expected
    assert buttons(slack_render(nudge())["blocks"]) == []  # no actions, no buttons
    SlackChannel("https://hooks.slack.com/services/T/B/x")  # the same render() posts there
    anne = slack.add_user(REP)
    bot = SlackBotChannel(slack.token, api_root=slack.api_root)
    result = await bot.send(nudge(actions=ACTIONS))
    await bot.aclose()
    assert result.ok, result.detail
    (dm,) = slack.dms(REP)
    assert dm.channel == anne  # channel = the user id: the bot's DM with them
    assert buttons(dm.blocks) == expected
    assert "Acme discovery" in dm.text or "no next step" in dm.text


async def test_the_bot_writes_to_each_rep_and_escalates_to_the_manager(rt, sim, slack):
    slack.add_user(REP)
    slack.add_user("boss@seller.io")
    rt.channels["slack_bot"] = SlackBotChannel(slack.token, api_root=slack.api_root)
    await register(rt, manager_email="boss@seller.io")
    rt.providers["sandbox"].put_event(REP, event(START + H))
    await sim.run_until(START + timedelta(days=6))
    assert [m.raw["text"] for m in slack.dms(REP)][:1] and all(
        "escalation" not in m.text.lower() for m in slack.dms(REP)
    )
    to_boss = slack.dms("boss@seller.io")
    assert to_boss and all("escalation" in m.text.lower() for m in to_boss)


async def test_an_unknown_recipient_is_skipped_once_never_retried(rt, sim, slack):
    rt.channels["slack_bot"] = SlackBotChannel(slack.token, api_root=slack.api_root)
    await register(rt)  # Anne has no Slack account in this workspace
    rt.providers["sandbox"].put_event(REP, event(START + H))
    await sim.run_until(START + timedelta(days=1))
    rows = await rt.db.run(
        lambda s: list(s.scalars(select(Delivery).where(Delivery.channel == "slack_bot")))
    )
    assert rows and all(r.status == "failed" and r.attempts == 1 for r in rows)
    assert "not a Slack user" in rows[0].last_error
    assert slack.calls.count("chat.postMessage") == 0


async def test_rate_limits_and_ok_false_are_retried_and_post_once(rt, sim, slack):
    slack.add_user(REP)
    slack.rate_limit("users.lookupByEmail", times=2, retry_after=30)
    slack.fail_next("chat.postMessage", "internal_error")
    slack.http_error("chat.postMessage", 503)
    rt.channels["slack_bot"] = SlackBotChannel(slack.token, api_root=slack.api_root)
    await register(rt)
    rt.providers["sandbox"].put_event(REP, event(START + H))
    await sim.run_until(START + 5 * H)
    (row,) = await rt.db.run(
        lambda s: list(s.scalars(select(Delivery).where(Delivery.channel == "slack_bot")))
    )
    assert row.status == "delivered" and row.attempts == 5
    assert len(slack.dms(REP)) == 1


async def test_a_bad_token_is_retried_then_given_up_with_slack_s_reason(rt, sim, slack):
    slack.add_user(REP)
    rt.channels["slack_bot"] = SlackBotChannel("xoxb-wrong", api_root=slack.api_root)
    await register(rt)
    rt.providers["sandbox"].put_event(REP, event(START + H))
    await sim.run_until(START + timedelta(days=2))
    (row,) = await rt.db.run(
        lambda s: list(s.scalars(select(Delivery).where(Delivery.channel == "slack_bot")))
    )
    assert row.status == "failed" and "invalid_auth" in row.last_error
    assert row.attempts == rt.settings.delivery_max_attempts


async def test_teams_gets_an_adaptive_card_with_open_url_actions(teams):
    channel = TeamsChannel(teams.url)
    result = await channel.send(nudge(actions=ACTIONS))
    assert result.ok, result.detail
    (card,) = teams.cards
    assert card["type"] == "AdaptiveCard"
    assert [(a["type"], a["title"], a["url"]) for a in card["actions"]] == [
        ("Action.OpenUrl", a["label"], a["url"]) for a in ACTIONS
    ]
    texts = " ".join(b.get("text", "") for b in card["body"])
    assert "No next step booked" in texts
    teams.deleted = True
    gone = await channel.send(nudge())
    assert not gone.ok and not gone.retryable and "404" in gone.detail
    assert teams.sig not in gone.detail  # the URL's secret never shows
    await channel.aclose()


async def test_teams_throttling_and_outages_are_retried_through_the_outbox(rt, sim, teams):
    teams.rate_limit(times=2, retry_after=20)
    teams.http_error(502)
    rt.channels["teams"] = TeamsChannel(teams.url)
    await register(rt)
    rt.providers["sandbox"].put_event(REP, event(START + H))
    await sim.run_until(START + 5 * H)
    (row,) = await rt.db.run(
        lambda s: list(s.scalars(select(Delivery).where(Delivery.channel == "teams")))
    )
    assert row.status == "delivered" and row.attempts == 4
    assert len(teams.cards) == 1
