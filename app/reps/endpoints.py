"""HTTP: /v1/reps."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from app.api import Authorized, runtime
from app.reps import service
from app.reps.schemas import RepIn, RepList, RepOut
from app.runtime import Runtime

router = APIRouter(prefix="/v1/reps", tags=["reps"], dependencies=[Authorized])


@router.post("", status_code=201, response_model=RepOut)
async def create_rep(body: RepIn, rt: Runtime = Depends(runtime)) -> Any:
    """Register a rep: the calendar is synced and watched right away."""
    return await service.register(rt, body)


@router.get("", response_model=RepList)
async def list_reps(rt: Runtime = Depends(runtime)) -> Any:
    return {"items": await rt.db.run(service.list_all, rt)}


@router.get("/{rep_id}", response_model=RepOut)
async def get_rep(rep_id: str, rt: Runtime = Depends(runtime)) -> Any:
    return await rt.db.run(service.read, rt, rep_id)


@router.delete("/{rep_id}", status_code=204)
async def delete_rep(rep_id: str, rt: Runtime = Depends(runtime)) -> Response:
    """Stop the calendar's channel/subscription and delete the rep's data."""
    await service.delete(rt, rep_id)
    return Response(status_code=204)
