"""HTTP: /v1/accounts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from app.accounts import service
from app.accounts.schemas import AccountIn
from app.api import Authorized, runtime
from app.runtime import Runtime

router = APIRouter(prefix="/v1/accounts", tags=["accounts"], dependencies=[Authorized])


@router.put("/{domain}")
async def put_account(domain: str, body: AccountIn, rt: Runtime = Depends(runtime)) -> Any:
    """What the CRM knows of a prospect company; ``timezone`` drives slot suggestions."""
    return await rt.db.run(service.upsert, rt, domain, body)


@router.get("/{domain}")
async def get_account(domain: str, rt: Runtime = Depends(runtime)) -> Any:
    return await rt.db.run(service.read, domain)
