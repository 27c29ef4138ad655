"""Nudge channels against real servers on loopback: an HTTP receiver and an SMTP server."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from app.delivery.channels import (
    CHANNELS,
    Channel,
    DeliveryResult,
    EmailChannel,
    Outbound,
    SlackChannel,
    WebhookChannel,
    sign,
    verify_signature,
)
from app.delivery.channels._http import retry_after

SECRET = "whsec_test"

PAYLOAD: dict[str, Any] = {
    "id": "n-1",
    "kind": "no_next_step",
    "created_at": "2026-11-23T10:00:00+00:00",
    "rep": {"id": "rep-1", "email": "ana@seller.example"},
    "meeting": {
        "id": "m-1",
        "title": "Discovery <Acme> & co",
        "start": "2026-11-20T14:00:00+01:00",
        "end": "2026-11-20T15:00:00+01:00",
        "account_domain": "acme.example",
        "external_attendees": ["bob@acme.example"],
    },
    "suggested_slots": [
        {"start": "2026-11-24T09:00:00+01:00", "end": "2026-11-24T09:15:00+01:00"},
        {"start": "2026-11-24T10:00:00+01:00", "end": "2026-11-24T10:15:00+01:00"},
    ],
    "draft_invite": {
        "subject": "Next step: Acme × Seller",
        "body": "Hi Bob,\nshall we pick this up on Tuesday?",
        "attendees": ["bob@acme.example"],
    },
    "message": "Aucun rendez-vous de suivi pour « Discovery » — réservez-en un.",
}


def outbound(**changes: Any) -> Outbound:
    fields: dict[str, Any] = {
        "nudge_id": "n-1",
        "payload": PAYLOAD,
        "recipient": "ana@seller.example",
        "subject": "No next step after Discovery",
        "text": "Réservez le suivi avec Bob.\nSuggested: Tuesday 09:00.",
    }
    fields.update(changes)
    return Outbound(**fields)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- signature --------------------------------------------------------------------------


def test_sign_matches_an_independent_hmac() -> None:
    body = b'{"id":"n-1","kind":"no_next_step"}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()

    assert sign(body, SECRET, 1700000000) == f"t=1700000000,v1={expected}"
    # The same vector, computed with `openssl dgst -sha256 -hmac whsec_test`.
    assert expected == "5642f498af83b2b2eecee6a7c65d436668f4398830d156537aabdefeac0a5b81"


def test_verify_signature_accepts_only_the_signed_body_in_time() -> None:
    body = b'{"id":"n-1"}'
    header = sign(body, SECRET, 1700000000)

    assert verify_signature(header, body, SECRET, now=1700000000)
    assert verify_signature(header, body, SECRET, now=1700000300)
    assert not verify_signature(header, body, SECRET, now=1700000301)  # replayed too late
    assert not verify_signature(header, body, SECRET, now=1699999699)  # from the future
    assert not verify_signature(header, body + b" ", SECRET, now=1700000000)
    assert not verify_signature(header, body, "other", now=1700000000)
    assert verify_signature(header, body, SECRET, now=1700000500, tolerance=600)


def test_verify_signature_takes_any_of_several_v1_and_refuses_garbage() -> None:
    body = b"{}"
    good = sign(body, SECRET, 1700000000)
    rotated = f"t=1700000000,v1={'0' * 64},{good.split(',')[1]}"

    assert verify_signature(rotated, body, SECRET, now=1700000000)
    for header in ["", "t=1700000000", "v1=abc", "t=x,v1=ab", "garbage", "t=1,t=2,v1=aa"]:
        assert not verify_signature(header, body, SECRET, now=1700000000)


def test_outbound_refuses_an_id_that_cannot_travel_in_headers() -> None:
    with pytest.raises(ValueError, match="nudge_id"):
        outbound(nudge_id="n 1\r\nBcc: x@evil.example")
    with pytest.raises(ValueError, match="nudge_id"):
        outbound(nudge_id="")


def test_retry_after_reads_seconds_and_http_dates() -> None:
    class Fixed:
        def now(self) -> datetime:
            return datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)

    assert retry_after("120", Fixed()) == 120.0
    assert retry_after("Mon, 23 Nov 2026 10:01:30 GMT", Fixed()) == 90.0
    assert retry_after("Mon, 23 Nov 2026 09:00:00 GMT", Fixed()) == 0.0
    assert retry_after("soon", Fixed()) is None
    assert retry_after(None, Fixed()) is None


def test_channels_declare_their_names() -> None:
    assert set(CHANNELS) == {
        "webhook",
        "email",
        "slack",
        "slack_bot",
        "teams",
        "hubspot",
        "salesforce",
    }
    assert all(CHANNELS[name].name == name for name in CHANNELS)


# --- a real HTTP receiver on loopback ---------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # hold the answer until the test ends (to provoke a client timeout)


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    signature_ok: bool


class Receiver:
    """A threaded HTTP server that records POSTs, verifies signatures and plays a script."""

    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.received: list[Received] = []
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                ok = verify_signature(
                    headers.get("x-nextstep-signature", ""), body, SECRET, now=int(time.time())
                )
                receiver.received.append(Received(self.path, headers, body, ok))
                reply = receiver.script.popleft() if receiver.script else Reply()
                if reply.hang:
                    receiver.release.wait(5)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A hung-up client is expected in the timeout test; keep stderr quiet.
        self.server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def url(self, path: str = "/hook") -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver():
    server = Receiver()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def webhook(receiver: Receiver):
    channel = WebhookChannel(receiver.url(), SECRET, timeout=2.0)
    yield channel
    await channel.aclose()


async def test_webhook_delivers_signed_payload_and_retries_with_the_same_id(
    receiver: Receiver, webhook: WebhookChannel
) -> None:
    receiver.script.extend([Reply(503, b"busy", {"Retry-After": "7"}), Reply(200, b"")])

    first = await webhook.send(outbound())
    second = await webhook.send(outbound())

    assert first == DeliveryResult(
        ok=False,
        retryable=True,
        detail=f"webhook {receiver.url()} answered 503: busy",
        retry_after=7.0,
    )
    assert second.ok
    assert len(receiver.received) == 2
    for request in receiver.received:
        assert request.path == "/hook"
        assert request.signature_ok
        assert request.body == json.dumps(
            PAYLOAD, ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")
        assert json.loads(request.body) == PAYLOAD
        assert request.headers["content-type"] == "application/json"
        assert request.headers["x-nextstep-nudge-id"] == "n-1"
        assert request.headers["idempotency-key"] == "n-1"
        assert request.headers["user-agent"].startswith("nextstep/")
    assert "réservez".encode() in receiver.received[0].body  # raw UTF-8, not \u escapes


async def test_webhook_client_error_is_final(receiver: Receiver, webhook: WebhookChannel) -> None:
    receiver.script.append(Reply(400, b"bad signature"))

    result = await webhook.send(outbound())

    assert not result.ok
    assert not result.retryable
    assert result.detail == f"webhook {receiver.url()} answered 400: bad signature"


async def test_webhook_rate_limit_asks_to_come_back_later(
    receiver: Receiver, webhook: WebhookChannel
) -> None:
    receiver.script.append(Reply(429, b"slow down", {"Retry-After": "30"}))

    result = await webhook.send(outbound())

    assert (result.ok, result.retryable, result.retry_after) == (False, True, 30.0)


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(408, True), (425, True), (500, True), (502, True), (401, False), (404, False), (410, False)],
)
async def test_webhook_statuses(
    receiver: Receiver, webhook: WebhookChannel, status: int, retryable: bool
) -> None:
    receiver.script.append(Reply(status, b"nope"))

    result = await webhook.send(outbound())

    assert (result.ok, result.retryable, result.retry_after) == (False, retryable, None)
    assert f"answered {status}" in result.detail


async def test_webhook_does_not_follow_redirects(
    receiver: Receiver, webhook: WebhookChannel
) -> None:
    receiver.script.append(Reply(301, b"", {"Location": "https://elsewhere.example/x?token=s"}))

    result = await webhook.send(outbound())

    assert (result.ok, result.retryable) == (False, False)
    assert "https://elsewhere.example/x" in result.detail
    assert "token" not in result.detail
    assert len(receiver.received) == 1

    receiver.script.append(Reply(308, b"", {"Location": "/moved"}))
    result = await webhook.send(outbound())
    assert result.detail.endswith(f"(redirects to {receiver.url('/moved')}; not followed)")


async def test_webhook_timeout_is_returned_not_raised(receiver: Receiver) -> None:
    receiver.script.append(Reply(hang=True))
    channel = WebhookChannel(receiver.url(), SECRET, timeout=0.2)
    try:
        result = await channel.send(outbound())
    finally:
        await channel.aclose()

    assert (result.ok, result.retryable) == (False, True)
    assert "timed out" in result.detail


async def test_webhook_unreachable_is_returned_not_raised() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    channel = WebhookChannel(url, SECRET, timeout=2.0)
    try:
        result = await channel.send(outbound())
    finally:
        await channel.aclose()

    assert (result.ok, result.retryable) == (False, True)
    assert result.detail.startswith(f"webhook {url} unreachable")


async def test_webhook_leaves_a_given_client_open(receiver: Receiver) -> None:
    async with httpx.AsyncClient() as client:
        channel = WebhookChannel(receiver.url(), SECRET, client=client)
        assert isinstance(channel, Channel)
        assert (await channel.send(outbound())).ok
        await channel.aclose()
        assert not client.is_closed
    assert receiver.received[0].signature_ok
    assert receiver.received[0].headers["user-agent"].startswith("nextstep/")


def test_webhook_refuses_bad_configuration() -> None:
    with pytest.raises(ValueError, match="NEXTSTEP_NUDGE_WEBHOOK_URL"):
        WebhookChannel("ftp://crm.example/hook", SECRET)
    with pytest.raises(ValueError, match="NEXTSTEP_NUDGE_WEBHOOK_SECRET"):
        WebhookChannel("https://crm.example/hook", "")


# --- Slack incoming webhook ---------------------------------------------------------------


@pytest.fixture
async def slack(receiver: Receiver):
    channel = SlackChannel(receiver.url("/services/T000/B000/secrettoken"), timeout=2.0)
    yield channel
    await channel.aclose()


async def test_slack_posts_text_and_mrkdwn_blocks(receiver: Receiver, slack: SlackChannel) -> None:
    result = await slack.send(outbound())

    assert result.ok
    (request,) = receiver.received
    assert request.path == "/services/T000/B000/secrettoken"
    assert request.headers["content-type"].startswith("application/json")
    message = json.loads(request.body)
    assert set(message) == {"text", "blocks"}
    assert message["text"] == "No next step after Discovery"
    assert message["blocks"]
    for block in message["blocks"]:
        assert block["type"] == "section"
        assert block["text"]["type"] == "mrkdwn"
        assert len(block["text"]["text"]) <= 3000
    text = "\n".join(block["text"]["text"] for block in message["blocks"])
    assert "No next step booked" in text
    assert "ana@seller.example" in text
    assert "Discovery &lt;Acme&gt; &amp; co" in text  # mrkdwn control characters escaped
    assert "bob@acme.example" in text
    assert "Suggested slots" in text
    assert "2026-11-24T09:00:00+01:00" in text  # the fallback of Slack's <!date^…> token
    assert "```Hi Bob,\nshall we pick this up on Tuesday?```" in text
    assert "Next step: Acme × Seller" in text


async def test_slack_renders_a_nudge_without_meeting(
    receiver: Receiver, slack: SlackChannel
) -> None:
    payload = {
        **PAYLOAD,
        "kind": "account_at_risk",
        "meeting": None,
        "suggested_slots": [],
        "account": {"domain": "acme.example", "score": 35, "level": "at_risk"},
    }

    result = await slack.send(outbound(payload=payload, subject=""))

    assert result.ok
    message = json.loads(receiver.received[0].body)
    assert message["text"] == "Account at risk: ana@seller.example"
    text = "\n".join(block["text"]["text"] for block in message["blocks"])
    assert "acme.example at_risk (35/100)" in text
    assert "Suggested slots" not in text


@pytest.mark.parametrize(
    ("reply", "retryable", "retry_after"),
    [
        (Reply(400, b"invalid_payload"), False, None),
        (Reply(404, b"no_service"), False, None),
        (Reply(410, b"channel_is_archived"), False, None),
        (Reply(429, b"rate_limited", {"Retry-After": "12"}), True, 12.0),
        (Reply(500, b"rollup_error"), True, None),
    ],
)
async def test_slack_errors(
    receiver: Receiver,
    slack: SlackChannel,
    reply: Reply,
    retryable: bool,
    retry_after: float | None,
) -> None:
    receiver.script.append(reply)

    result = await slack.send(outbound())

    assert (result.ok, result.retryable, result.retry_after) == (False, retryable, retry_after)
    assert reply.body.decode() in result.detail
    assert "secrettoken" not in result.detail  # the URL path is the credential


# --- a real SMTP server on loopback -------------------------------------------------------


class Mailbox:
    """aiosmtpd handler that keeps what it is given, or answers what the test scripted."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.data_reply:
            return self.data_reply
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


def _authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"hunter2"
    # handled=False: aiosmtpd itself answers 235 or 535.
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server():
    mailbox = Mailbox()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=_authenticate,
        auth_require_tls=False,
    )
    controller.start()
    yield mailbox, controller.port
    controller.stop()


def email_channel(port: int, **options: Any) -> EmailChannel:
    return EmailChannel("127.0.0.1", port, sender="nudges@nextstep.example", timeout=2.0, **options)


async def test_email_sends_text_with_json_attachment_and_stable_message_id(smtp_server) -> None:
    mailbox, port = smtp_server
    channel = email_channel(port)

    assert (await channel.send(outbound())).ok
    assert (await channel.send(outbound())).ok  # a retry of the same nudge
    await channel.aclose()

    assert len(mailbox.messages) == 2
    ids = set()
    for mail_from, rcpt_tos, message in mailbox.messages:
        assert mail_from == "nudges@nextstep.example"
        assert rcpt_tos == ["ana@seller.example"]
        assert message["From"] == "nudges@nextstep.example"
        assert message["To"] == "ana@seller.example"
        assert message["Subject"] == "No next step after Discovery"
        assert message["Date"].datetime.tzinfo is not None
        assert message["X-NextStep-Nudge-Id"] == "n-1"
        ids.add(message["Message-ID"])
        body = message.get_body(preferencelist=("plain",))
        assert body.get_content().splitlines() == [
            "Réservez le suivi avec Bob.",
            "Suggested: Tuesday 09:00.",
        ]
        assert body["Content-Transfer-Encoding"] in ("quoted-printable", "base64")  # 7-bit safe
        (attachment,) = list(message.iter_attachments())
        assert attachment.get_filename() == "nudge.json"
        assert attachment.get_content_type() == "application/json"
        assert json.loads(attachment.get_content()) == PAYLOAD
    assert ids == {"<n-1@nextstep>"}


async def test_email_logs_in_when_given_credentials(smtp_server) -> None:
    mailbox, port = smtp_server

    good = await email_channel(port, username="nudges", password="hunter2").send(outbound())
    bad = await email_channel(port, username="nudges", password="wrong").send(outbound())

    assert good.ok
    assert (bad.ok, bad.retryable) == (False, False), bad
    assert "535" in bad.detail
    assert len(mailbox.messages) == 1


@pytest.mark.parametrize(
    ("rcpt_reply", "data_reply", "retryable", "needle"),
    [
        ("550 5.1.1 No such user", None, False, "refused recipient ana@seller.example: 550"),
        ("450 4.2.1 Mailbox busy", None, True, "refused recipient ana@seller.example: 450"),
        (None, "451 4.3.0 Try again later", True, "answered 451 4.3.0 Try again later"),
        (None, "554 5.7.1 Rejected as spam", False, "answered 554 5.7.1 Rejected as spam"),
    ],
)
async def test_email_smtp_replies(
    smtp_server, rcpt_reply: str | None, data_reply: str | None, retryable: bool, needle: str
) -> None:
    mailbox, port = smtp_server
    mailbox.rcpt_reply, mailbox.data_reply = rcpt_reply, data_reply

    result = await email_channel(port).send(outbound())

    assert (result.ok, result.retryable) == (False, retryable)
    assert needle in result.detail
    assert result.detail.startswith(f"smtp 127.0.0.1:{port} ")


async def test_email_unreachable_server_is_retryable() -> None:
    port = free_port()

    result = await email_channel(port).send(outbound())

    assert (result.ok, result.retryable) == (False, True)
    assert result.detail.startswith(f"smtp 127.0.0.1:{port} unreachable")


async def test_email_starttls_refused_by_a_plain_server_is_a_configuration_error(
    smtp_server,
) -> None:
    _, port = smtp_server

    result = await email_channel(port, starttls=True).send(outbound())

    assert (result.ok, result.retryable) == (False, False)
    assert "STARTTLS" in result.detail


async def test_email_without_recipient_is_final() -> None:
    result = await email_channel(25).send(outbound(recipient=""))

    assert (result.ok, result.retryable) == (False, False)


def test_email_refuses_contradictory_configuration() -> None:
    with pytest.raises(ValueError, match="starttls"):
        email_channel(25, starttls=True, use_ssl=True)
    with pytest.raises(ValueError, match="username and password"):
        email_channel(25, username="only-me")
