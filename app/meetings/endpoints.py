"""HTTP: /v1/meetings."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Request

from app.api import Authorized, Page, errors, links, runtime
from app.meetings import service
from app.meetings.schemas import MeetingList, MeetingOut, ScheduleIn, SnoozeIn, WaiveIn
from app.runtime import Runtime

router = APIRouter(prefix="/v1/meetings", tags=["meetings"], dependencies=[Authorized])


MEETING = "/v1/meetings/{meeting_id}"
FIRST = "$response.body#/items/0/id"


@router.get(
    "",
    response_model=MeetingList,
    responses={
        **errors(401, 404, 422),
        **links(
            200,
            GetMeeting=(MEETING, "get", FIRST),
            Snooze=(f"{MEETING}/snooze", "post", FIRST),
            Schedule=(f"{MEETING}/schedule", "post", FIRST),
            Waive=(f"{MEETING}/waive", "post", FIRST),
        ),
    },
)
async def list_meetings(
    request: Request,
    page: Page,
    rep_id: str | None = None,
    state: str | None = None,
    rt: Runtime = Depends(runtime),
) -> MeetingList:
    """Meetings by start, of one rep and in one state when asked; ``next`` links the
    following page while there is one."""
    rows = await rt.db.run(
        service.list_meetings, rep_id=rep_id, state=state, limit=page.limit + 1, offset=page.offset
    )
    items, link = page.cut(request, rows)
    return MeetingList(items=items, next=link)


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


@router.post("/{meeting_id}/unwaive", response_model=MeetingOut, responses=errors(401, 404))
async def unwaive(meeting_id: str, rt: Runtime = Depends(runtime)) -> MeetingOut:
    """Undo a waive: the meeting takes the state its calendar gives it again, and nudges
    as if it had never been waived (windows already past nudge now)."""
    return await rt.db.run(service.unwaive, rt, meeting_id)


@router.post("/{meeting_id}/unsnooze", response_model=MeetingOut, responses=errors(401, 404))
async def unsnooze(meeting_id: str, rt: Runtime = Depends(runtime)) -> MeetingOut:
    """End a snooze now: a nudge held back by it comes at once."""
    return await rt.db.run(service.unsnooze, rt, meeting_id)


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
