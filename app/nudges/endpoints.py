"""HTTP: /v1/nudges."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.api import Authorized, Limit, Offset, errors, runtime
from app.nudges import service
from app.nudges.schemas import NudgeList
from app.runtime import Runtime

router = APIRouter(prefix="/v1/nudges", tags=["nudges"], dependencies=[Authorized])


@router.get(
    "",
    response_model=NudgeList,
    response_model_exclude_unset=True,
    responses=errors(401, 404, 422),
)
async def get_nudges(
    rep_id: str | None = None,
    meeting_id: str | None = None,
    kind: str | None = None,
    limit: Limit = 500,
    offset: Offset = 0,
    rt: Runtime = Depends(runtime),
) -> NudgeList:
    """Every nudge produced, delivered or not, oldest first."""
    items = await rt.db.run(
        service.list_nudges,
        rep_id=rep_id,
        meeting_id=meeting_id,
        kind=kind,
        limit=limit,
        offset=offset,
    )
    return NudgeList(items=items)
