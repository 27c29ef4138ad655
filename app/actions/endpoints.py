"""HTTP: ``/actions/{token}`` — the pages behind a nudge's action URLs.

No Bearer key: the token is the credential (sealed, bound to its nudge and action,
expiring at the horizon). ``GET`` never changes anything; the page's one button POSTs to
the same URL. Answers are HTML for a phone, with no JavaScript.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header
from fastapi.responses import HTMLResponse

from app.actions import service
from app.api import runtime
from app.runtime import Runtime

router = APIRouter(prefix="/actions", tags=["actions"])

HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
}


def _html(page: service.Page) -> HTMLResponse:
    return HTMLResponse(page.render(), status_code=page.status, headers=HEADERS)


@router.get("/{token}", response_class=HTMLResponse)
@router.head("/{token}", response_class=HTMLResponse, include_in_schema=False)
async def show(
    token: str,
    rt: Runtime = Depends(runtime),
    accept_language: str | None = Header(default=None),
) -> HTMLResponse:
    """What the action will do, and one button that does it. Changes nothing (``HEAD`` too:
    link scanners use it)."""
    return _html(await rt.db.run(service.show, rt, token, accept_language))


@router.post("/{token}", response_class=HTMLResponse)
async def act(
    token: str,
    rt: Runtime = Depends(runtime),
    accept_language: str | None = Header(default=None),
) -> HTMLResponse:
    """Do the action (once: again answers that it was done and changes nothing)."""
    return _html(await service.act(rt, token, accept_language))
