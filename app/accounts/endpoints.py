"""HTTP: /v1/accounts."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from app.accounts import service
from app.accounts.schemas import AccountIn, AccountOut, HealthList, HealthOut, SignalIn, SignalOut
from app.api import Authorized, Page, errors, links, runtime
from app.runtime import Runtime
from policies.vocabulary import HealthLevel

router = APIRouter(prefix="/v1/accounts", tags=["accounts"], dependencies=[Authorized])


@router.get("", response_model=HealthList, responses=errors(401, 422))
async def list_accounts(
    request: Request,
    page: Page,
    level: HealthLevel | None = None,
    rt: Runtime = Depends(runtime),
) -> HealthList:
    """Accounts' health, by level; ``next`` links the following page while there is one."""
    rows = await rt.db.run(service.list_by_level, level, page.limit + 1, page.offset)
    items, link = page.cut(request, rows)
    return HealthList(items=items, next=link)


ACCOUNT = "/v1/accounts/{domain}"
DOMAIN = "$response.body#/domain"


@router.put(
    "/{domain}",
    response_model=AccountOut,
    response_model_exclude_unset=True,
    responses={
        **errors(401, 422),
        **links(
            200,
            GetAccount=(ACCOUNT, "get", DOMAIN),
            GetHealth=(f"{ACCOUNT}/health", "get", DOMAIN),
            PostSignal=(f"{ACCOUNT}/signals", "post", DOMAIN),
        ),
    },
)
async def put_account(domain: str, body: AccountIn, rt: Runtime = Depends(runtime)) -> AccountOut:
    """What the CRM knows of a prospect company; ``timezone`` drives slot suggestions."""
    return await rt.db.run(service.upsert, rt, domain, body)


@router.get(
    "/{domain}",
    response_model=AccountOut,
    response_model_exclude_unset=True,
    responses=errors(401, 404, 422),
)
async def get_account(domain: str, rt: Runtime = Depends(runtime)) -> AccountOut:
    return await rt.db.run(service.read, domain)


@router.delete("/{domain}", status_code=204, responses=errors(401, 404, 422))
async def delete_account(domain: str, rt: Runtime = Depends(runtime)) -> Response:
    """Delete the account with its calendar history, CRM signals and health."""
    await rt.db.run(service.delete, domain)
    return Response(status_code=204)


@router.get("/{domain}/health", response_model=HealthOut, responses=errors(401, 404, 422))
async def get_health(domain: str, rt: Runtime = Depends(runtime)) -> HealthOut:
    """Score (100 = healthy), level and the silent signals with their evidence."""
    return await rt.db.run(service.read_health, rt, service.normalize_key(domain))


@router.post(
    "/{domain}/signals", status_code=201, response_model=SignalOut, responses=errors(401, 422)
)
async def post_signal(domain: str, body: SignalIn, rt: Runtime = Depends(runtime)) -> SignalOut:
    """A signal the CRM sees and the calendar cannot (e.g. ``small_talk_gone``)."""
    return await rt.db.run(service.add_signal, rt, domain, body)
