"""Nudges by e-mail through the whole engine, to a real SMTP server on loopback."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import timedelta
from email.message import Message

import pytest
from aiosmtpd.controller import Controller

from app.accounts.schemas import AccountIn
from app.accounts.service import upsert as put_account
from app.main import build_channels
from tests.conftest import START
from tests.helpers.calendar import REP, event, register
from tests.helpers.serve import free_port

H = timedelta(hours=1)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(
            (
                list(envelope.rcpt_tos),
                email.message_from_bytes(envelope.content, policy=email.policy.default),
            )
        )
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_nudge_and_escalation_arrive_by_email(rt, sim, smtp):
    controller, inbox = smtp
    settings = rt.settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": controller.port,
            "smtp_from": "nextstep@seller.io",
        }
    )
    rt.channels = build_channels(settings)
    assert list(rt.channels) == ["email"]
    await register(rt, manager_email="boss@seller.io")
    rt.providers["sandbox"].put_event(REP, event(START + H))
    await sim.run_until(START + 4 * H)
    assert [r for r, _ in inbox.messages] == [[REP]]
    _, msg = inbox.messages[0]
    assert msg["To"] == REP and msg["From"] == "nextstep@seller.io"
    assert "Acme discovery" in msg["Subject"]
    parts = {p.get_filename(): p for p in msg.walk() if p.get_filename()}
    payload = json.loads(parts["nudge.json"].get_payload(decode=True))
    assert payload["kind"] == "no_next_step"
    assert msg["Message-ID"] == f"<{payload['id']}@nextstep>"
    body = next(
        p for p in msg.walk() if p.get_content_type() == "text/plain" and not p.get_filename()
    )
    assert "Acme discovery" in body.get_payload(decode=True).decode()
    await sim.run_until(START + 4 * H + timedelta(days=3))
    assert [r for r, _ in inbox.messages] == [[REP], ["boss@seller.io"]]
    await rt.channels["email"].aclose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_no_common_working_hours_means_no_slot_and_a_draft_asking_for_times(rt, sim, channel):
    await register(rt, timezone="Europe/Paris")
    await rt.db.run(put_account, rt, "acme.com", AccountIn(timezone="Pacific/Honolulu"))
    rt.providers["sandbox"].put_event(REP, event(START + H))
    await sim.run_until(START + 4 * H)
    payload = channel.sent[0].payload
    assert payload["suggested_slots"] == []
    assert (
        "AM" not in payload["draft_invite"]["body"] and "PM" not in payload["draft_invite"]["body"]
    )
    assert "slot" in payload["message"].lower()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("locale", ["en", "fr"])
async def test_the_email_has_an_html_part_with_buttons_and_a_text_part_with_the_links(
    rt, sim, smtp, locale
):
    controller, inbox = smtp
    settings = rt.settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": controller.port,
            "smtp_from": "nextstep@seller.io",
        }
    )
    rt.channels = build_channels(settings)
    await register(rt, locale=locale)
    rt.providers["sandbox"].put_event(REP, event(START + H))
    await sim.run_until(START + 4 * H)
    (_, msg), *_ = inbox.messages
    parts = {p.get_filename(): p for p in msg.walk() if p.get_filename()}
    payload = json.loads(parts["nudge.json"].get_payload(decode=True))
    urls = [a["url"] for a in payload["actions"]]
    assert urls and len(urls) == len(payload["suggested_slots"]) + 2
    (alternative,) = [p for p in msg.walk() if p.get_content_type() == "multipart/alternative"]
    kinds = [p.get_content_type() for p in alternative.iter_parts()]
    assert kinds == ["text/plain", "text/html"]  # the richest last, as RFC 2046 orders them
    text = alternative.get_body(preferencelist=("plain",)).get_content()
    html = alternative.get_body(preferencelist=("html",)).get_content()
    for url in urls:
        assert url in text
        assert f'href="{url}"' in html
    assert "<script" not in html
    if locale == "fr":
        assert "Aucune prochaine étape après « Acme discovery »" in msg["Subject"]
        assert "En un clic" in text and 'lang="fr"' in html
        assert "Reporter d’un jour" in html
    else:
        assert "No next step booked after “Acme discovery”" in msg["Subject"]
        assert "One click:" in text and "Snooze one day" in html
    await rt.channels["email"].aclose()
