"""HTTP access to the sandbox provider's calendars (only with NEXTSTEP_SANDBOX=true).

Lets a demo, a test or a curious user play "the outside world" against a running server:
put meetings on a rep's calendar, answer invites, cancel or move events.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from app import providers as registry
from app.api import Authorized
from app.errors import InvalidRequest, NotFoundError
from connectors.base import Attendee, CalendarEvent

router = APIRouter(prefix="/sandbox", tags=["sandbox"], dependencies=[Authorized])

Resp = Literal["accepted", "declined", "tentative", "needs_action"]


class AttendeeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str
    response: Resp = "needs_action"
    is_resource: bool = False


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: str | None = None
    title: str = ""
    start: AwareDatetime
    end: AwareDatetime
    all_day: bool = False
    status: Literal["confirmed", "tentative", "cancelled"] = "confirmed"
    event_type: Literal["default", "out_of_office", "focus_time", "working_location"] = "default"
    organizer_email: str | None = None
    rep_response: Resp = "accepted"
    attendees: list[AttendeeIn] = Field(default_factory=list)
    recurring_event_id: str | None = None
    ical_uid: str | None = Field(default=None, max_length=1000)


class ResponseIn(BaseModel):
    """An attendee's answer; ``proposed`` (with ``proposed_start`` and ``proposed_end``) is a
    counter-proposal as Outlook carries it: a tentative answer with a new time."""

    model_config = ConfigDict(extra="forbid")
    attendee: str
    response: Literal["accepted", "declined", "tentative", "needs_action", "proposed"]
    proposed_start: AwareDatetime | None = None
    proposed_end: AwareDatetime | None = None

    @model_validator(mode="after")
    def _proposal(self) -> ResponseIn:
        given = self.proposed_start is not None or self.proposed_end is not None
        if self.response != "proposed":
            if given:
                raise ValueError("proposed_start/proposed_end: only with response 'proposed'")
            return self
        if self.proposed_start is None or self.proposed_end is None:
            raise ValueError("proposed_start and proposed_end are required with 'proposed'")
        if self.proposed_end <= self.proposed_start:
            raise ValueError("proposed_end: must be after proposed_start")
        return self


def sandbox(request: Request) -> registry.Sandbox:
    return registry.sandbox(request.app.state.runtime.providers)


def _event_json(ev: CalendarEvent) -> dict[str, Any]:
    return {
        "event_id": ev.event_id,
        "title": ev.title,
        "start": ev.start.isoformat(),
        "end": ev.end.isoformat(),
        "status": ev.status,
        "attendees": [
            {
                "email": a.email,
                "response": "proposed" if a.proposed else a.response,
                **(
                    {
                        "proposed_start": a.proposed_start.isoformat(),
                        "proposed_end": a.proposed_end.isoformat(),
                    }
                    if a.proposed_start is not None and a.proposed_end is not None
                    else {}
                ),
            }
            for a in ev.attendees
        ],
    }


@router.post("/calendars/{email}/events", status_code=201)
async def put_event(email: str, body: EventIn, sb: registry.Sandbox = Depends(sandbox)) -> Any:
    """Create or replace an event on the calendar of ``email``."""
    try:
        ev = CalendarEvent(
            event_id=body.event_id or uuid.uuid4().hex,
            title=body.title,
            start=body.start.astimezone(UTC),
            end=body.end.astimezone(UTC),
            all_day=body.all_day,
            status=body.status,
            event_type=body.event_type,
            organizer_email=body.organizer_email or email,
            rep_response=body.rep_response,
            attendees=tuple(
                Attendee(email=a.email, response=a.response, is_resource=a.is_resource)
                for a in body.attendees
            ),
            recurring_event_id=body.recurring_event_id,
            ical_uid=body.ical_uid,
        )
    except ValueError as err:
        raise InvalidRequest(str(err)) from err
    return _event_json(sb.put_event(email, ev))


@router.get("/calendars/{email}/events")
async def list_events(email: str, sb: registry.Sandbox = Depends(sandbox)) -> Any:
    return {"items": [_event_json(e) for e in sb.events(email)]}


def _existing(sb: registry.Sandbox, email: str, event_id: str) -> CalendarEvent:
    event = sb.calendar(email).events.get(event_id)
    if event is None:
        raise NotFoundError(f"no event {event_id!r} on the sandbox calendar of {email}")
    return event


@router.post("/calendars/{email}/events/{event_id}/responses")
async def respond(
    email: str, event_id: str, body: ResponseIn, sb: registry.Sandbox = Depends(sandbox)
) -> Any:
    """An attendee answers the invite."""
    _existing(sb, email, event_id)
    try:
        if body.response == "proposed":
            assert body.proposed_start is not None and body.proposed_end is not None
            sb.propose(
                email,
                event_id,
                body.attendee,
                body.proposed_start.astimezone(UTC),
                body.proposed_end.astimezone(UTC),
            )
        else:
            sb.respond(email, event_id, body.attendee, body.response)
    except KeyError as err:
        raise InvalidRequest(f"attendee: {err.args[0]}") from err
    return _event_json(_existing(sb, email, event_id))


@router.post("/calendars/{email}/events/{event_id}/move")
async def move(
    email: str, event_id: str, start: datetime, sb: registry.Sandbox = Depends(sandbox)
) -> Any:
    _existing(sb, email, event_id)
    if start.tzinfo is None:
        raise InvalidRequest("start: needs a UTC offset")
    return _event_json(sb.move_event(email, event_id, start))


@router.delete("/calendars/{email}/events/{event_id}", status_code=204)
async def cancel(email: str, event_id: str, sb: registry.Sandbox = Depends(sandbox)) -> None:
    _existing(sb, email, event_id)
    sb.cancel_event(email, event_id)
