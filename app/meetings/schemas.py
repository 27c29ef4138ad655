"""Request and response bodies of /v1/meetings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.api import Instant, IsoDateTime
from policies.vocabulary import MeetingState


class WaiveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


class SnoozeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    until: Instant


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: Instant
    end: Instant | None = None
    subject: str | None = Field(default=None, max_length=500)
    body: str | None = Field(default=None, max_length=20000)


class FollowUpOut(BaseModel):
    """The meeting's follow-up: the earliest later event with the account, within the horizon."""

    event_id: str = Field(description="the provider's event id")
    start: IsoDateTime
    end: IsoDateTime
    responses: dict[str, str] = Field(
        description="external attendee e-mail → accepted | declined | tentative | needs_action"
    )


class MeetingOut(BaseModel):
    """A prospect meeting and its next-step state (the contract's fields, then extensions)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "9a8b7c6d-5e4f-5a3b-9c2d-1e0f9a8b7c6d",
                    "rep_id": "0b7e3c5a-2f4d-4a61-8c9e-1d2f3a4b5c6d",
                    "event_id": "7h2k9q0c3r",
                    "title": "Acme discovery",
                    "start": "2026-11-23T09:00:00+00:00",
                    "end": "2026-11-23T10:00:00+00:00",
                    "account_domain": "acme.com",
                    "external_attendees": ["bob@acme.com"],
                    "state": "invited",
                    "follow_up": {
                        "event_id": "p4m1x8z2",
                        "start": "2026-11-25T15:00:00+00:00",
                        "end": "2026-11-25T15:15:00+00:00",
                        "responses": {"bob@acme.com": "needs_action"},
                    },
                    "policy": "prospect-default",
                    "due_at": "2026-11-27T14:00:00+00:00",
                    "snoozed_until": None,
                    "waived_reason": None,
                }
            ]
        }
    )
    id: str
    rep_id: str
    event_id: str = Field(description="the provider's event id")
    title: str
    start: IsoDateTime
    end: IsoDateTime
    account_domain: str
    external_attendees: list[str]
    state: MeetingState
    follow_up: FollowUpOut | None
    # Extensions beyond the contract.
    policy: str
    due_at: IsoDateTime | None = Field(description="when the meeting is next looked at")
    snoozed_until: IsoDateTime | None
    waived_reason: str | None


class MeetingList(BaseModel):
    """``GET /v1/meetings``: meetings by start; ``next`` is the next page's URL (null on
    the last page)."""

    items: list[MeetingOut]
    next: str | None = Field(default=None, examples=["/v1/meetings?limit=500&cursor=bzUwMA"])
