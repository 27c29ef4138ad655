"""HTTP: /v1/meetings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from app.api import Authorized, runtime
from app.meetings import api_service as service
from app.meetings.schemas import ScheduleIn, SnoozeIn, WaiveIn
from app.runtime import Runtime

router = APIRouter(prefix="/v1/meetings", tags=["meetings"], dependencies=[Authorized])


@router.get("")
async def list_meetings(
    rep_id: str | None = None,
    state: str | None = None,
    limit: int = Query(default=500, ge=1, le=5000),
    offset: int = Query(default=0, ge=0),
    rt: Runtime = Depends(runtime),
) -> Any:
    items = await rt.db.run(
        service.list_meetings, rep_id=rep_id, state=state, limit=limit, offset=offset
    )
    return {"items": items}


@router.get("/{meeting_id}")
async def get_meeting(meeting_id: str, rt: Runtime = Depends(runtime)) -> Any:
    return await rt.db.run(service.read, meeting_id)


@router.post("/{meeting_id}/waive")
async def waive(meeting_id: str, body: WaiveIn, rt: Runtime = Depends(runtime)) -> Any:
    """No follow-up is wanted: the meeting is `waived` and never nudges again."""
    return await rt.db.run(service.waive, rt, meeting_id, body.reason)


@router.post("/{meeting_id}/snooze")
async def snooze(meeting_id: str, body: SnoozeIn, rt: Runtime = Depends(runtime)) -> Any:
    """No nudge for this meeting before `until`."""
    return await rt.db.run(service.snooze, rt, meeting_id, body.until)


@router.post("/{meeting_id}/schedule", status_code=201)
async def schedule(meeting_id: str, body: ScheduleIn, rt: Runtime = Depends(runtime)) -> Any:
    """Create the follow-up through the provider, inviting the meeting's external attendees."""
    return await service.schedule(rt, meeting_id, body)
