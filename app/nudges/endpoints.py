"""HTTP: /v1/nudges."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request

from app.api import Authorized, Page, errors, runtime
from app.nudges import events, service
from app.nudges.schemas import EventList, NudgeList
from app.runtime import Runtime

router = APIRouter(prefix="/v1/nudges", tags=["nudges"], dependencies=[Authorized])
events_router = APIRouter(prefix="/v1/events", tags=["events"], dependencies=[Authorized])


@router.get(
    "",
    response_model=NudgeList,
    response_model_exclude_unset=True,
    responses=errors(401, 404, 422),
)
async def get_nudges(
    request: Request,
    page: Page,
    rep_id: str | None = None,
    meeting_id: str | None = None,
    kind: str | None = None,
    rt: Runtime = Depends(runtime),
) -> NudgeList:
    """Every nudge produced, delivered or not, oldest first; ``next`` links the following
    page while there is one."""
    rows = await rt.db.run(
        service.list_nudges,
        rep_id=rep_id,
        meeting_id=meeting_id,
        kind=kind,
        limit=page.limit + 1,
        offset=page.offset,
    )
    items, link = page.cut(request, rows)
    return NudgeList(items=items, next=link)


@events_router.get(
    "", response_model=EventList, response_model_exclude_unset=True, responses=errors(401, 404, 422)
)
async def get_events(
    after: str | None = Query(
        default=None, description="the id of the last event you have; absent: from the first"
    ),
    type: str | None = Query(
        default=None,
        description="only this type (meeting.state_changed, rep.status_changed, "
        "account.risk_changed)",
    ),
    limit: int = Query(default=100, ge=1, le=1000),
    rt: Runtime = Depends(runtime),
) -> EventList:
    """The events the webhook receives, for a CRM that cannot receive webhooks: in the
    order they happened, each with the same ``id`` as the webhook's."""
    items, last = await rt.db.run(events.list_events, after=after, type=type, limit=limit)
    link = None
    if last is not None:
        query = {"after": last, "limit": limit} | ({"type": type} if type else {})
        link = f"/v1/events?{urlencode(query)}"
    return EventList.model_validate({"items": items, "next": link})
