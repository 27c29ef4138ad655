"""HTTP access to the sandbox provider's calendars (only with NEXTSTEP_SANDBOX=true).

Lets a demo, a test or a curious user play "the outside world" against a running server:
put meetings on a rep's calendar, answer invites (or propose a new time), cancel or move
events — and, with ``NEXTSTEP_CLOCK``, move the trial clock: ``POST /sandbox/clock``
answers once everything due up to the new instant was done in time order (syncs,
decisions, nudges, deliveries), by the same discrete-event run the demo uses
(app/simulation.py).
"""

from __future__ import annotations

import uuid
from datetime import UTC
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from app import providers as registry
from app.api import Authorized, Instant
from app.clock import ManualClock
from app.errors import Conflict, InvalidRequest, NotFoundError
from app.runtime import Runtime
from app.simulation import Simulation, trial_lock
from connectors.base import Attendee, CalendarEvent
from policies.zones import check_zone

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
    start: Instant
    end: Instant
    all_day: bool = False
    status: Literal["confirmed", "tentative", "cancelled"] = "confirmed"
    event_type: Literal["default", "out_of_office", "focus_time", "working_location"] = "default"
    organizer_email: str | None = None
    rep_response: Resp = "accepted"
    attendees: list[AttendeeIn] = Field(default_factory=list)
    recurring_event_id: str | None = None
    private: bool = Field(
        default=False, description="marked private (Google visibility, Outlook sensitivity)"
    )
    ical_uid: str | None = None
    time_zone: str | None = None  # the organiser's IANA zone, as the providers report it

    _zone = field_validator("time_zone")(lambda v: None if v is None else check_zone(v))


class ResponseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attendee: str
    response: Literal["accepted", "declined", "tentative", "needs_action", "proposed"]
    proposed_start: AwareDatetime | None = None
    proposed_end: AwareDatetime | None = None


class ClockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: AwareDatetime


def sandbox(request: Request) -> registry.Sandbox:
    return registry.sandbox(request.app.state.runtime.providers)


def _attendee_json(a: Attendee) -> dict[str, Any]:
    out: dict[str, Any] = {
        "email": a.email,
        "response": a.response,
        "is_resource": a.is_resource,
        "is_organizer": a.is_organizer,
    }
    if a.proposed_start is not None and a.proposed_end is not None:
        out["response"] = "proposed"
        out["answer"] = a.response  # what the proposal came with (tentative or declined)
        out["proposed_start"] = a.proposed_start.isoformat()
        out["proposed_end"] = a.proposed_end.isoformat()
    return out


def _event_json(ev: CalendarEvent) -> dict[str, Any]:
    return {
        "event_id": ev.event_id,
        "title": ev.title,
        "start": ev.start.isoformat(),
        "end": ev.end.isoformat(),
        "all_day": ev.all_day,
        "status": ev.status,
        "event_type": ev.event_type,
        "organizer_email": ev.organizer_email,
        "rep_response": ev.rep_response,
        "attendees": [_attendee_json(a) for a in ev.attendees],
        "recurring_event_id": ev.recurring_event_id,
        "ical_uid": ev.ical_uid,
        "time_zone": ev.time_zone,
        # What NextStep wrote on the events it creates (follow-ups, holds).
        "description": ev.description or None,
        "video_link": ev.video_link,
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
            private=body.private,
            ical_uid=body.ical_uid,
            time_zone=body.time_zone,
        )
    except ValueError as err:
        raise InvalidRequest(str(err)) from err
    if ev.end <= ev.start and not ev.all_day:
        raise InvalidRequest("end: must be after start")
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
    """An attendee answers the invite, or proposes a new time (``proposed``, as Outlook
    carries it: a tentative answer with the proposed start and end)."""
    _existing(sb, email, event_id)
    proposed = None
    if body.proposed_start is not None or body.proposed_end is not None:
        if body.proposed_start is None or body.proposed_end is None:
            raise InvalidRequest("proposed_start and proposed_end: both are needed")
        if body.proposed_end <= body.proposed_start:
            raise InvalidRequest("proposed_end: must be after proposed_start")
        proposed = (body.proposed_start.astimezone(UTC), body.proposed_end.astimezone(UTC))
    elif body.response == "proposed":
        raise InvalidRequest("proposed_start: required with the response 'proposed'")
    answer: Resp = "tentative" if body.response == "proposed" else body.response
    try:
        sb.respond(email, event_id, body.attendee, answer, proposed=proposed)
    except KeyError as err:
        raise InvalidRequest(f"attendee: {err.args[0]}") from err
    return _event_json(_existing(sb, email, event_id))


@router.post("/calendars/{email}/events/{event_id}/move")
async def move(
    email: str, event_id: str, start: Instant, sb: registry.Sandbox = Depends(sandbox)
) -> Any:
    _existing(sb, email, event_id)
    if start.tzinfo is None:
        raise InvalidRequest("start: needs a UTC offset")
    return _event_json(sb.move_event(email, event_id, start))


@router.delete("/calendars/{email}/events/{event_id}", status_code=204)
async def cancel(email: str, event_id: str, sb: registry.Sandbox = Depends(sandbox)) -> None:
    _existing(sb, email, event_id)
    sb.cancel_event(email, event_id)


# --- the trial clock ----------------------------------------------------------------------------


@router.get("/clock")
async def get_clock(request: Request) -> Any:
    """The service's clock: the trial clock with NEXTSTEP_CLOCK, else real time."""
    rt: Runtime = request.app.state.runtime
    return {"now": rt.clock.now().isoformat()}


@router.post("/clock")
async def move_clock(body: ClockIn, request: Request) -> Any:
    """Move the trial clock forward to ``to``, doing everything due on the way in time
    order; answers once it is all done. ``to`` equal to now settles what is due."""
    rt: Runtime = request.app.state.runtime
    if not isinstance(rt.clock, ManualClock):
        raise Conflict(
            "the service runs on real time: start it with NEXTSTEP_CLOCK=<ISO 8601 instant> "
            "(and NEXTSTEP_SANDBOX=true) to move its clock"
        )
    to = body.to.astimezone(UTC)
    async with trial_lock(rt):
        now = rt.clock.now()
        if to < now:
            raise Conflict(
                f"to: {to.isoformat()} is before the trial clock's now ({now.isoformat()}); "
                "the clock only moves forward"
            )
        await Simulation(rt).run_until(to)
    return {"now": rt.clock.now().isoformat()}
