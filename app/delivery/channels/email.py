"""Nudges sent as e-mail through an SMTP relay (stdlib smtplib, run off the event loop).

Each message carries ``Message-ID: <{nudge id}@nextstep>``, identical on every retry, so
a receiving system can drop duplicates; the text the rep reads is the body and the
contract's JSON payload is attached as ``nudge.json``.

Replies are judged the SMTP way: a 5xx reply is permanent (retrying cannot help), a 4xx
reply is temporary, and a connection that fails or drops is worth another try.
"""

from __future__ import annotations

import asyncio
import email.policy
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime
from typing import ClassVar

from app.delivery.channels.base import (
    NUDGE_ID_HEADER,
    Clock,
    DeliveryResult,
    Outbound,
    SystemClock,
    encode_payload,
)

# 7-bit transfer encodings only (quoted-printable/base64 for non-ASCII text), so the
# message is safe even through a relay that does not announce 8BITMIME.
_POLICY = email.policy.default.clone(cte_type="7bit")


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return f"{code} {' '.join(text.split())}".strip()


class EmailChannel:
    """Send each nudge as an e-mail to ``Outbound.recipient``."""

    name: ClassVar[str] = "email"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        use_ssl: bool = False,
        timeout: float = 10.0,
        clock: Clock | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if starttls and use_ssl:
            raise ValueError("choose either starttls or use_ssl, not both")
        if (username is None) != (password is None):
            raise ValueError("SMTP username and password go together")
        if not sender:
            raise ValueError("an e-mail channel needs a sender address")
        self._host = host
        self._port = port
        self._sender = sender
        self._username = username
        self._password = password
        self._starttls = starttls
        self._use_ssl = use_ssl
        self._timeout = timeout
        self._clock = clock or SystemClock()
        # The default context verifies certificates and honours SSL_CERT_FILE.
        self._ssl_context = ssl_context
        self._what = f"smtp {host}:{port}"

    def __repr__(self) -> str:
        return f"EmailChannel({self._host!r}, {self._port!r}, sender={self._sender!r})"

    def build_message(self, out: Outbound) -> EmailMessage:
        """The e-mail for a nudge: text (and HTML) body, ``nudge.json`` attached, stable
        Message-ID."""
        message = EmailMessage(policy=_POLICY)
        message["From"] = self._sender
        message["To"] = out.recipient
        message["Subject"] = out.subject
        message["Date"] = format_datetime(self._clock.now())
        message["Message-ID"] = f"<{out.nudge_id}@nextstep>"
        message[NUDGE_ID_HEADER] = out.nudge_id
        # RFC 3834: tells auto-responders (out-of-office) not to answer.
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(out.text)
        if out.html:
            # multipart/alternative: the plain text (same links) and the HTML with buttons.
            message.add_alternative(out.html, subtype="html")
        message.add_attachment(
            encode_payload(out.payload),
            maintype="application",
            subtype="json",
            filename="nudge.json",
        )
        return message

    async def send(self, out: Outbound) -> DeliveryResult:
        """Send the nudge once; the result says whether a retry can help."""
        if not out.recipient:
            return DeliveryResult(
                ok=False, retryable=False, detail=f"e-mail nudge {out.nudge_id} has no recipient"
            )
        message = self.build_message(out)
        return await asyncio.to_thread(self._deliver, message, out.recipient)

    def _context(self) -> ssl.SSLContext:
        return self._ssl_context or ssl.create_default_context()

    def _deliver(self, message: EmailMessage, recipient: str) -> DeliveryResult:
        """Blocking: one SMTP session for one message (runs in a worker thread)."""
        what = self._what
        try:
            smtp: smtplib.SMTP
            if self._use_ssl:
                smtp = smtplib.SMTP_SSL(
                    self._host, self._port, timeout=self._timeout, context=self._context()
                )
            else:
                smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
            with smtp:
                if self._starttls:
                    smtp.starttls(context=self._context())
                if self._username is not None and self._password is not None:
                    smtp.login(self._username, self._password)
                smtp.send_message(message, from_addr=self._sender, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as err:
            replies = "; ".join(
                f"{rcpt}: {_reply(code, msg)}" for rcpt, (code, msg) in err.recipients.items()
            )
            # A 4xx refusal (mailbox busy, greylisting) is temporary; 5xx is final.
            temporary = all(400 <= code < 500 for code, _ in err.recipients.values())
            return DeliveryResult(
                ok=False, retryable=temporary, detail=f"{what} refused recipient {replies}"
            )
        except smtplib.SMTPConnectError as err:
            return DeliveryResult(
                ok=False,
                retryable=True,
                detail=f"{what} refused the connection: {_reply(err.smtp_code, err.smtp_error)}",
            )
        except smtplib.SMTPResponseException as err:
            # Sender refused, data refused, authentication failed, HELO refused...
            step = type(err).__name__.removeprefix("SMTP").removesuffix("Error")
            return DeliveryResult(
                ok=False,
                retryable=not 500 <= err.smtp_code < 600,
                detail=f"{what} answered {_reply(err.smtp_code, err.smtp_error)} ({step})",
            )
        except smtplib.SMTPNotSupportedError as err:
            # e.g. STARTTLS or AUTH asked of a server that does not offer it: configuration.
            return DeliveryResult(ok=False, retryable=False, detail=f"{what}: {err}")
        except smtplib.SMTPServerDisconnected as err:
            return DeliveryResult(
                ok=False, retryable=True, detail=f"{what} disconnected: {str(err) or 'no reason'}"
            )
        except smtplib.SMTPException as err:
            return DeliveryResult(ok=False, retryable=True, detail=f"{what} failed: {err}")
        except TimeoutError:
            return DeliveryResult(ok=False, retryable=True, detail=f"{what} timed out")
        except OSError as err:
            # Refused or reset connections, DNS failures, TLS handshake failures.
            reason = err.strerror or str(err) or type(err).__name__
            return DeliveryResult(ok=False, retryable=True, detail=f"{what} unreachable: {reason}")
        return DeliveryResult(ok=True, retryable=False, detail=f"{what} accepted the message")

    async def aclose(self) -> None:
        """Nothing to release: each send opens and closes its own SMTP session."""
