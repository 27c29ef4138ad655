"""HTTP: /v1/accounts."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from app.accounts import health, service
from app.accounts.schemas import AccountIn, SignalIn
from app.api import Authorized, runtime
from app.runtime import Runtime

router = APIRouter(prefix="/v1/accounts", tags=["accounts"], dependencies=[Authorized])


@router.get("")
async def list_accounts(
    level: Literal["healthy", "watch", "at_risk"] | None = None,
    limit: int = Query(default=500, ge=1, le=5000),
    offset: int = Query(default=0, ge=0),
    rt: Runtime = Depends(runtime),
) -> Any:
    """Accounts' health, by level."""
    return {"items": await rt.db.run(health.list_by_level, level, limit, offset)}


@router.put("/{domain}")
async def put_account(domain: str, body: AccountIn, rt: Runtime = Depends(runtime)) -> Any:
    """What the CRM knows of a prospect company; ``timezone`` drives slot suggestions."""
    return await rt.db.run(service.upsert, rt, domain, body)


@router.get("/{domain}")
async def get_account(domain: str, rt: Runtime = Depends(runtime)) -> Any:
    return await rt.db.run(service.read, domain)


@router.delete("/{domain}", status_code=204)
async def delete_account(domain: str, rt: Runtime = Depends(runtime)) -> Response:
    """Delete the account with its calendar history, CRM signals and health."""
    await rt.db.run(service.delete, domain)
    return Response(status_code=204)


@router.get("/{domain}/health")
async def get_health(domain: str, rt: Runtime = Depends(runtime)) -> Any:
    """Score (100 = healthy), level and the silent signals with their evidence."""
    return await rt.db.run(health.read, rt, service.normalize_key(domain))


@router.post("/{domain}/signals", status_code=201)
async def post_signal(domain: str, body: SignalIn, rt: Runtime = Depends(runtime)) -> Any:
    """A signal the CRM sees and the calendar cannot (e.g. ``small_talk_gone``)."""
    return await rt.db.run(service.add_signal, rt, domain, body)
