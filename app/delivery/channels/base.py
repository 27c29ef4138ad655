"""What every nudge channel is: the message going out, the result coming back, the signature.

A channel delivers one `Outbound` and answers with a `DeliveryResult`. Failures that are
part of talking to the outside world (refused connections, timeouts, non-2xx answers,
SMTP replies) are *returned*, with ``retryable`` telling the caller whether trying the
same nudge again later can help; only programming errors raise.

The webhook signature is the one in the external contract::

    X-NextStep-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import Any, ClassVar, Protocol, runtime_checkable

SIGNATURE_HEADER = "X-NextStep-Signature"
NUDGE_ID_HEADER = "X-NextStep-Nudge-Id"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def _version() -> str:
    try:
        return metadata.version("nextstep")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0"


USER_AGENT = f"nextstep/{_version()}"

# The id travels in headers (Message-ID, Idempotency-Key), so it must stay one plain token.
_NUDGE_ID = re.compile(r"[!#-;=?-\[\]-~]{1,200}")


@dataclass(frozen=True, kw_only=True, slots=True)
class Outbound:
    """One nudge on its way out: the contract payload plus a human-readable rendering."""

    nudge_id: str
    payload: dict[str, Any]
    recipient: str = ""
    subject: str = ""
    text: str = ""
    html: str = ""  # the e-mail's HTML part (actions as buttons); empty: text only

    def __post_init__(self) -> None:
        if not _NUDGE_ID.fullmatch(self.nudge_id):
            raise ValueError(
                f"nudge_id {self.nudge_id!r} must be 1-200 visible ASCII characters, "
                "without spaces, quotes, backslashes or angle brackets"
            )


@dataclass(frozen=True, kw_only=True, slots=True)
class DeliveryResult:
    """How one delivery attempt went; ``retry_after`` is the receiver's wish, in seconds."""

    ok: bool
    retryable: bool = True
    detail: str = ""
    retry_after: float | None = None


class Clock(Protocol):
    """Anything that tells the aware current time (``app.clock.Clock`` fits)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@runtime_checkable
class Channel(Protocol):
    """A way to deliver nudges; ``name`` is how configuration and logs refer to it."""

    name: ClassVar[str]

    async def send(self, out: Outbound) -> DeliveryResult:
        """Deliver one nudge once; never raises for failures of the outside world."""
        ...

    async def aclose(self) -> None:
        """Release connections the channel owns."""
        ...


def encode_payload(payload: dict[str, Any]) -> bytes:
    """Serialise a payload once, compactly, as UTF-8 JSON: these are the bytes that get signed."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """Return the ``X-NextStep-Signature`` value for ``body`` sent at ``timestamp``."""
    t = int(timestamp)
    mac = hmac.new(secret.encode("utf-8"), f"{t}.".encode("ascii") + body, hashlib.sha256)
    return f"t={t},v1={mac.hexdigest()}"


STANDARD_SECRET_PREFIX = "whsec_"


def standard_key(secret: str) -> bytes:
    """The Standard Webhooks signing key of ``secret``: a ``whsec_<base64>`` secret is its
    decoded bytes (that library's convention), any other secret its UTF-8 bytes."""
    if secret.startswith(STANDARD_SECRET_PREFIX):
        try:
            key = base64.b64decode(secret[len(STANDARD_SECRET_PREFIX) :] + "==", validate=False)
        except (binascii.Error, ValueError):
            key = b""
        if key:
            return key
    return secret.encode("utf-8")


def standard_headers(body: bytes, secret: str, *, msg_id: str, timestamp: int) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` (Standard Webhooks:
    ``v1,<base64 HMAC-SHA256 of "<id>.<t>.<raw body>">``)."""
    t = int(timestamp)
    mac = hmac.new(standard_key(secret), f"{msg_id}.{t}.".encode() + body, hashlib.sha256)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(t),
        "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode("ascii"),
    }


def verify_signature(
    header: str, body: bytes, secret: str, *, now: int, tolerance: int = 300
) -> bool:
    """Check an ``X-NextStep-Signature`` header against the raw body, in constant time.

    The timestamp must be within ``tolerance`` seconds of ``now`` (replay protection).
    Several ``v1=`` entries are accepted, any of which may match (secret rotation).
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            if timestamp is not None or not value.isdigit():
                return False
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value.lower())
    if timestamp is None or not candidates or abs(now - timestamp) > tolerance:
        return False
    expected = sign(body, secret, timestamp).rpartition("v1=")[2]
    matched = False
    for candidate in candidates:
        # Compare every candidate so the time taken does not reveal which one matched.
        matched |= hmac.compare_digest(
            expected.encode("ascii"), candidate.encode("ascii", "replace")
        )
    return matched
