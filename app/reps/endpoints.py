"""HTTP: /v1/reps."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from app.api import Authorized, Page, errors, links, runtime
from app.reps import service
from app.reps.schemas import RepIn, RepList, RepOut, RepPatch
from app.runtime import Runtime

router = APIRouter(prefix="/v1/reps", tags=["reps"], dependencies=[Authorized])


REP = "/v1/reps/{rep_id}"


@router.post(
    "",
    status_code=201,
    response_model=RepOut,
    responses={
        **errors(401, 409, 422),
        **links(
            201,
            GetRep=(REP, "get", "$response.body#/id"),
            DeleteRep=(REP, "delete", "$response.body#/id"),
        ),
    },
)
async def create_rep(body: RepIn, rt: Runtime = Depends(runtime)) -> RepOut:
    """Register a rep: the calendar is synced and watched right away."""
    return await service.register(rt, body)


@router.get(
    "",
    response_model=RepList,
    responses={**errors(401), **links(200, GetRep=(REP, "get", "$response.body#/items/0/id"))},
)
async def list_reps(request: Request, page: Page, rt: Runtime = Depends(runtime)) -> RepList:
    """Reps in the order they registered; ``next`` links the following page while there
    is one."""
    rows = await rt.db.run(service.list_all, rt, limit=page.limit + 1, offset=page.offset)
    items, link = page.cut(request, rows)
    return RepList(items=items, next=link)


@router.get("/{rep_id}", response_model=RepOut, responses=errors(401, 404, 422))
async def get_rep(rep_id: str, rt: Runtime = Depends(runtime)) -> RepOut:
    return await rt.db.run(service.read, rt, rep_id)


@router.patch("/{rep_id}", response_model=RepOut, responses=errors(401, 404, 422))
async def patch_rep(rep_id: str, body: RepPatch, rt: Runtime = Depends(runtime)) -> RepOut:
    """Change any field given at registration but ``email`` and ``provider``; only the
    fields given change. The rep's meetings are decided again with the new settings."""
    return await service.patch(rt, rep_id, body)


@router.post("/{rep_id}/resync", status_code=202, response_model=RepOut, responses=errors(401, 404))
async def resync_rep(rep_id: str, rt: Runtime = Depends(runtime)) -> RepOut:
    """Run a full sync of the rep's calendar now (in the background: ``202``; the rep's
    ``calendar.synced_at`` tells when it is done)."""
    return await service.resync(rt, rep_id)


@router.delete("/{rep_id}", status_code=204, responses=errors(401, 404, 422))
async def delete_rep(rep_id: str, rt: Runtime = Depends(runtime)) -> Response:
    """Stop the calendar's channel/subscription and delete the rep's data."""
    await service.delete(rt, rep_id)
    return Response(status_code=204)
