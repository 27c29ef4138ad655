"""HTTP: /v1/meetings."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Query

from app.api import Authorized, errors, runtime
from app.meetings import service
from app.meetings.schemas import MeetingList, MeetingOut, ScheduleIn, SnoozeIn, WaiveIn
from app.runtime import Runtime

router = APIRouter(prefix="/v1/meetings", tags=["meetings"], dependencies=[Authorized])


@router.get("", response_model=MeetingList, responses=errors(401, 404, 422))
async def list_meetings(
    rep_id: str | None = None,
    state: str | None = None,
    limit: int = Query(default=500, ge=1, le=5000),
    offset: int = Query(default=0, ge=0),
    rt: Runtime = Depends(runtime),
) -> MeetingList:
    """Meetings by start, of one rep and in one state when asked."""
    items = await rt.db.run(
        service.list_meetings, rep_id=rep_id, state=state, limit=limit, offset=offset
    )
    return MeetingList(items=items)


@router.get("/{meeting_id}", response_model=MeetingOut, responses=errors(401, 404, 422))
async def get_meeting(meeting_id: str, rt: Runtime = Depends(runtime)) -> MeetingOut:
    return await rt.db.run(service.read, meeting_id)


@router.post("/{meeting_id}/waive", response_model=MeetingOut, responses=errors(401, 404, 422))
async def waive(meeting_id: str, body: WaiveIn, rt: Runtime = Depends(runtime)) -> MeetingOut:
    """No follow-up is wanted: the meeting is `waived` and never nudges again."""
    return await rt.db.run(service.waive, rt, meeting_id, body.reason)


@router.post("/{meeting_id}/snooze", response_model=MeetingOut, responses=errors(401, 404, 422))
async def snooze(meeting_id: str, body: SnoozeIn, rt: Runtime = Depends(runtime)) -> MeetingOut:
    """No nudge for this meeting before `until`."""
    return await rt.db.run(service.snooze, rt, meeting_id, body.until)


@router.post(
    "/{meeting_id}/schedule",
    status_code=201,
    response_model=MeetingOut,
    responses=errors(401, 404, 409, 422, 502, 503),
)
async def schedule(
    meeting_id: str,
    body: ScheduleIn,
    rt: Runtime = Depends(runtime),
    idempotency_key: str | None = Header(
        default=None,
        min_length=1,
        max_length=255,
        description="the same key twice creates one invite and answers the same",
    ),
) -> MeetingOut:
    """Create the follow-up through the provider, inviting the meeting's external attendees
    and the rep's colleagues of the first meeting; an existing declined or unaccepted
    follow-up is moved instead. Without `body`: the agenda invitation, with a video link
    unless the policy says `video: false`. `409` for a waived or secured meeting, a slot
    outside either side's working hours, or a busy one."""
    return await service.schedule(rt, meeting_id, body, idempotency_key)
