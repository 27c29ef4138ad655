"""Google Calendar push notifications: the ``X-Goog-*`` headers, read into neutral terms.

A notification has no body; everything is in headers (Google "Push notifications" guide):
``X-Goog-Channel-ID``, ``X-Goog-Channel-Token`` (our secret, optional on the wire),
``X-Goog-Resource-ID``, ``X-Goog-Resource-State`` (``sync`` right after the channel was
created, ``exists`` on a change, ``not_exists`` when the resource is gone),
``X-Goog-Message-Number`` (increasing, not consecutive), ``X-Goog-Resource-URI`` and
``X-Goog-Channel-Expiration`` (human-readable, only when the channel expires; an
unparsable value is ignored, since it is informational and Google's own doc sample carries
a placeholder there).

``GoogleWebhooks.read`` turns a request into one provider-neutral ``Notification``
(``ValueError`` → 4xx); the engine then looks the channel up by ``channel_id`` and checks
the token and resource id with ``Notification.matches`` before trusting it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

from connectors.base import Inbound, Notification, WebhookRequest

ResourceState = Literal["sync", "exists", "not_exists"]
_STATES: frozenset[str] = frozenset({"sync", "exists", "not_exists"})


@dataclass(frozen=True, kw_only=True, slots=True)
class GoogleNotification:
    """One push notification as Google delivered it."""

    channel_id: str
    token: str | None
    resource_id: str
    resource_state: ResourceState
    message_number: int
    resource_uri: str | None = None
    channel_expiration: datetime | None = None

    def __post_init__(self) -> None:
        if not self.channel_id:
            raise ValueError("X-Goog-Channel-ID is empty")
        if not self.resource_id:
            raise ValueError("X-Goog-Resource-ID is empty")
        if self.resource_state not in _STATES:
            raise ValueError(
                f"X-Goog-Resource-State {self.resource_state!r} is not one of {sorted(_STATES)}"
            )
        if self.message_number < 1:
            raise ValueError(f"X-Goog-Message-Number {self.message_number} is not positive")
        if self.channel_expiration is not None and self.channel_expiration.tzinfo is None:
            raise ValueError("channel_expiration must be timezone-aware")

    @property
    def is_sync(self) -> bool:
        """The handshake message sent once when the channel is created."""
        return self.resource_state == "sync"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                value = candidate
                break
    return value.strip() if value is not None else None


def _required(headers: Mapping[str, str], name: str) -> str:
    value = _header(headers, name)
    if not value:
        raise ValueError(f"missing header {name}")
    return value


def parse_expiration(value: str) -> datetime:
    """Parse ``X-Goog-Channel-Expiration`` (RFC 1123, e.g. ``Tue, 19 Nov 2013 01:13:52 GMT``)."""
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"invalid header X-Goog-Channel-Expiration: {value!r}") from err
    if parsed.tzinfo is None:  # "-0000" means UTC with unknown origin
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_notification(headers: Mapping[str, str]) -> GoogleNotification:
    """Build a ``GoogleNotification`` from request headers (any case).

    Raises ``ValueError`` naming the header that is missing or invalid.
    """
    channel_id = _required(headers, "X-Goog-Channel-ID")
    resource_id = _required(headers, "X-Goog-Resource-ID")
    state = _required(headers, "X-Goog-Resource-State")
    if state not in _STATES:
        raise ValueError(f"invalid header X-Goog-Resource-State: {state!r}")
    raw_number = _required(headers, "X-Goog-Message-Number")
    try:
        number = int(raw_number)
    except ValueError as err:
        raise ValueError(f"invalid header X-Goog-Message-Number: {raw_number!r}") from err
    if number < 1:
        raise ValueError(f"invalid header X-Goog-Message-Number: {raw_number!r}")
    expiration_text = _header(headers, "X-Goog-Channel-Expiration")
    expiration = None
    if expiration_text:
        try:
            expiration = parse_expiration(expiration_text)
        except ValueError:
            # Informational only (we know our channel's expiry): never refuse for it.
            expiration = None
    return GoogleNotification(
        channel_id=channel_id,
        token=_header(headers, "X-Goog-Channel-Token") or None,
        resource_id=resource_id,
        resource_state=state,  # type: ignore[arg-type]  # checked against _STATES above
        message_number=number,
        resource_uri=_header(headers, "X-Goog-Resource-URI") or None,
        channel_expiration=expiration,
    )


def as_notification(note: GoogleNotification) -> Notification:
    """The provider-neutral form; a redelivery repeats the message number, so it dedupes."""
    return Notification(
        channel_id=note.channel_id,
        secret=note.token or "",
        resource_id=note.resource_id,
        dedupe_key=f"{note.channel_id}:{note.message_number}",
        kind="sync" if note.is_sync else "change",
    )


class GoogleWebhooks:
    """``POST /webhooks/google``: one notification a request, all of it in the headers."""

    paths: Mapping[str, str] = {
        "": "Google push notification: everything is in the X-Goog-* headers."
    }
    accepted_status: int = 200

    def read(self, request: WebhookRequest) -> Inbound:
        """The request's one notification; ``ValueError`` naming a missing or bad header."""
        return Inbound(notifications=(as_notification(parse_notification(request.headers)),))
