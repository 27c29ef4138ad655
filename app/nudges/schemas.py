"""Response bodies of /v1/nudges: the contract's nudge JSON, as stored, plus its deliveries.

A nudge's payload is stored as it was sent. These models describe it for /docs; they keep
every field the payload has, in its order, and add none it lacks (the endpoint answers
with ``exclude_unset``): a meeting nudge has no ``account``, an ``account_at_risk`` no
``window``. Fields a later version adds pass through (``extra="allow"``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.api import IsoDateTime
from policies.vocabulary import DeliveryStatus, MeetingState, NudgeKind

_PASS_THROUGH = ConfigDict(extra="allow")


class NudgeRep(BaseModel):
    """Who the nudge is about (for ``account_at_risk``: the account's owner)."""

    model_config = _PASS_THROUGH
    id: str | None
    email: str
    timezone: str | None = None


class NudgeMeeting(BaseModel):
    """The prospect meeting the nudge is about."""

    model_config = _PASS_THROUGH
    id: str
    title: str
    start: IsoDateTime
    end: IsoDateTime
    account_domain: str
    external_attendees: list[str]


class SlotOut(BaseModel):
    """A suggested follow-up slot, free on the rep's calendar, inside both sides' hours."""

    model_config = _PASS_THROUGH
    start: IsoDateTime
    end: IsoDateTime


class DraftInvite(BaseModel):
    """The ready-to-send invite (US business English: it goes to the prospect)."""

    model_config = _PASS_THROUGH
    subject: str
    body: str
    attendees: list[str]


class ActionOut(BaseModel):
    """A one-click action: ``GET`` its ``url`` shows what will happen, the page's button does it."""

    model_config = _PASS_THROUGH
    kind: str = Field(description="send_invite | snooze | waive")
    url: str = Field(description="under NEXTSTEP_PUBLIC_URL; opaque; expires at the horizon")
    label: str = Field(description="what the button says, in the reader's locale")
    slot: SlotOut | None = Field(default=None, description="send_invite only: its slot")


class WindowOut(BaseModel):
    """The policy window whose closing produced the nudge."""

    model_config = _PASS_THROUGH
    name: str = Field(description="invite_within | accept_within | escalate_after")
    closed_at: IsoDateTime


class DeliveryOut(BaseModel):
    """One channel's delivery of the nudge (the outbox row)."""

    channel: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    delivered_at: IsoDateTime | None


class NudgeOut(BaseModel):
    """A nudge as produced (the payload POSTed to the webhook), and how its delivery went.

    The contract's fields come first; ``account`` only on ``account_at_risk``; the rest are
    extensions.
    """

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "id": "3f6d2c1e-6a57-4d38-9a0b-5a1c2f7e9b10",
                    "kind": "no_next_step",
                    "created_at": "2026-11-23T12:00:00+00:00",
                    "rep": {
                        "id": "0b7e3c5a-2f4d-4a61-8c9e-1d2f3a4b5c6d",
                        "email": "anne@seller.io",
                        "timezone": "Europe/Paris",
                    },
                    "meeting": {
                        "id": "9a8b7c6d-5e4f-5a3b-9c2d-1e0f9a8b7c6d",
                        "title": "Acme discovery",
                        "start": "2026-11-23T09:00:00+00:00",
                        "end": "2026-11-23T10:00:00+00:00",
                        "account_domain": "acme.com",
                        "external_attendees": ["bob@acme.com"],
                    },
                    "suggested_slots": [
                        {"start": "2026-11-24T15:00:00+00:00", "end": "2026-11-24T15:15:00+00:00"}
                    ],
                    "draft_invite": {
                        "subject": "Next step: Acme discovery",
                        "body": "Hi Bob, … Does Tuesday, November 24 at 10:00 AM EST work for you?",
                        "attendees": ["bob@acme.com"],
                    },
                    "message": "No next step booked after “Acme discovery” …",
                    "state": "needs_next_step",
                    "policy": "prospect-default",
                    "window": {"name": "invite_within", "closed_at": "2026-11-23T12:00:00+00:00"},
                    "recipient": "anne@seller.io",
                    "busy_source": "provider",
                    "prospect_timezone": "America/New_York",
                    "deliveries": [
                        {
                            "channel": "webhook",
                            "status": "delivered",
                            "attempts": 1,
                            "last_error": None,
                            "delivered_at": "2026-11-23T12:00:01+00:00",
                        }
                    ],
                }
            ]
        },
    )
    id: str
    kind: NudgeKind
    created_at: IsoDateTime
    rep: NudgeRep
    meeting: NudgeMeeting | None
    suggested_slots: list[SlotOut]
    draft_invite: DraftInvite | None = Field(
        default=None, description="absent only on connection_lost (nothing to send)"
    )
    message: str
    actions: list[ActionOut] | None = Field(
        default=None, description="every nudge with slots: send_invite per slot, snooze, waive"
    )
    account: dict[str, Any] | None = Field(
        default=None,
        description="account_at_risk only: the account's health, as "
        "GET /v1/accounts/{domain}/health answers it",
    )
    state: MeetingState | None = Field(
        default=None, description="the meeting's state when the nudge was decided"
    )
    policy: str | None = None
    window: WindowOut | None = None
    previous_level: str | None = Field(
        default=None, description="account_at_risk only: the level before it worsened"
    )
    recipient: str | None = Field(default=None, description="who reads it (rep or manager)")
    busy_source: str | None = Field(
        default=None, description="provider | local (free/busy failed: the synced calendar)"
    )
    prospect_timezone: str | None = None
    deliveries: list[DeliveryOut] = Field(default_factory=list)

    @classmethod
    def of(cls, payload: dict[str, Any], deliveries: list[DeliveryOut]) -> NudgeOut:
        """The stored payload with its deliveries; only the fields it has are answered."""
        return cls.model_validate({**payload, "deliveries": deliveries})


class NudgeList(BaseModel):
    """``GET /v1/nudges``: every nudge produced, delivered or not, oldest first; ``next``
    is the next page's URL (null on the last page)."""

    items: list[NudgeOut]
    next: str | None = Field(default=None, examples=["/v1/nudges?limit=500&cursor=bzUwMA"])


class EventOut(BaseModel):
    """One event for the CRM, as the webhook received it (signed, same ``id``).

    ``meeting.state_changed``: ``meeting`` (as ``GET /v1/meetings/{id}`` shows it, after the
    change) and ``previous_state`` (null for a meeting first seen in another state than
    ``upcoming``). ``rep.status_changed``: ``rep`` and ``previous_status``.
    ``account.risk_changed``: ``account`` (the health) and ``previous_level``.
    """

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "meeting.state_changed",
                    "id": "6c1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6",
                    "occurred_at": "2026-11-23T10:00:00+00:00",
                    "meeting": {
                        "id": "9a8b7c6d-5e4f-5a3b-9c2d-1e0f9a8b7c6d",
                        "rep_id": "0b7e3c5a-2f4d-4a61-8c9e-1d2f3a4b5c6d",
                        "event_id": "evt-42",
                        "title": "Acme discovery",
                        "start": "2026-11-23T09:00:00+00:00",
                        "end": "2026-11-23T10:00:00+00:00",
                        "account_domain": "acme.com",
                        "external_attendees": ["bob@acme.com"],
                        "state": "needs_next_step",
                        "follow_up": None,
                    },
                    "previous_state": "upcoming",
                },
                {
                    "type": "rep.status_changed",
                    "id": "7d2f3a4b-5c6d-4e7f-9081-92a3b4c5d6e7",
                    "occurred_at": "2026-11-23T11:00:00+00:00",
                    "rep": {
                        "id": "0b7e3c5a-2f4d-4a61-8c9e-1d2f3a4b5c6d",
                        "email": "anne@seller.io",
                        "status": "auth_failed",
                        "status_detail": "access refused by the provider: unauthorized_client",
                    },
                    "previous_status": "active",
                },
            ]
        },
    )
    type: str = Field(
        description="meeting.state_changed | rep.status_changed | account.risk_changed"
    )
    id: str
    occurred_at: IsoDateTime


class EventList(BaseModel):
    """``GET /v1/events``: events in the order they happened, after ``after``.

    ``next`` is the URL of the following page while there is one; at the end it is null,
    and a poller asks again later with ``after`` = the ``id`` of the last event it has.
    """

    items: list[EventOut]
    next: str | None = Field(
        default=None, examples=["/v1/events?after=7d2f3a4b-5c6d-4e7f-9081-92a3b4c5d6e7&limit=100"]
    )
