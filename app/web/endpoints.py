"""HTML pages: sign-in, calendar connection, the rep's page, the manager's board.

Server-rendered (Jinja2 templates in ``templates/``), readable on a phone, no JavaScript.
A GET never changes anything but the browser cookie that CSRF tokens are made from (and
the OAuth callback, which the protocol makes a GET: it uses its single-use ``state``
once and redirects at once to a clean URL). Every form POSTs with a CSRF field.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from app.db.models import Rep
from app.errors import NotFoundError
from app.reps import service as reps
from app.runtime import Runtime
from app.web import service
from app.web import session as web
from connectors.oidc import AuthRefused

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


def _local(value: datetime | None, zone: str = "UTC") -> str:
    if value is None:
        return ""
    try:
        tz = ZoneInfo(zone)
    except (KeyError, ValueError):
        tz = ZoneInfo("UTC")
    return value.astimezone(tz).strftime("%a %d %b %H:%M")


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{round(value * 100)}%"


templates.env.filters["local"] = _local
templates.env.filters["percent"] = _percent


def _rt(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _page(request: Request, name: str, context: dict[str, Any], *, status: int = 200) -> Response:
    rt = _rt(request)
    who = web.browser(request)
    ctx = {
        "csrf": web.csrf_token(rt, who),
        "signed_in": web.signed_in_email(rt, request, rt.clock.now()),
        **context,
    }
    response = templates.TemplateResponse(request, name, ctx, status_code=status)
    who.keep(response)
    response.headers.update(HEADERS)
    return response


def _message(request: Request, title: str, text: str, *, status: int) -> Response:
    return _page(request, "message.html", {"title": title, "text": text}, status=status)


def _refused(request: Request) -> Response:
    return _message(
        request, "Refused", "This form has expired or did not come from this site.", status=403
    )


def _status(err: Exception) -> int:
    """404: no such provider here; 429: too many flows; 503: the provider is unreachable."""
    if isinstance(err, NotFoundError):
        return 404
    return 429 if isinstance(err, service.TooManyFlows) else 503


def _to(url: str) -> Response:
    response = RedirectResponse(url, status_code=303)
    response.headers.update(HEADERS)
    return response


def _email(request: Request) -> str | None:
    rt = _rt(request)
    return web.signed_in_email(rt, request, rt.clock.now())


async def _viewers(request: Request, read: Callable[..., Any], *args: Any) -> Any:
    """``read(session, rt, email, *args)`` for the signed-in viewer — or the response instead:
    the way to sign in, or the page saying that it is not found."""
    email = _email(request)
    if email is None:
        return _to("/signin")
    rt = _rt(request)
    try:
        return await rt.db.run(read, rt, email, *args)
    except NotFoundError as err:
        return _message(request, "Not found", str(err), status=404)


async def _forged(request: Request) -> bool:
    """Whether the form POSTed lacks this browser's CSRF token (then nothing changes)."""
    form = await web.read_form(request)
    return not web.csrf_ok(_rt(request), request, form)


async def _connect_rep(request: Request, token: str) -> Rep | Response:
    """The rep a connection link is for — or the page saying the link is not valid."""
    rt = _rt(request)
    rep_id = reps.rep_of_connect_token(rt, token)
    rep = await rt.db.run(service.repo.rep, rep_id) if rep_id else None
    if rep is None or rep.auth != "user":
        return _message(request, "Unknown link", "This connection link is not valid.", status=404)
    return rep


# --- sign-in ---------------------------------------------------------------------------------


@router.get("/")
async def home(request: Request) -> Response:
    email = _email(request)
    if email is None:
        return _to("/signin")
    rt = _rt(request)
    who = await rt.db.run(service.viewer, rt, email)
    if who.manages:
        return _to("/team")
    if who.rep is not None:
        return _to(f"/reps/{who.rep.id}")
    return _message(
        request,
        "Nothing to show yet",
        f"You are signed in as {email}, but no rep or team of yours is registered.",
        status=200,
    )


@router.get("/signin")
async def signin_page(request: Request) -> Response:
    providers = service.identity_providers(_rt(request))
    return _page(
        request, "signin.html", {"providers": [(n, p.label) for n, p in providers.items()]}
    )


@router.post("/signin/{provider}")
async def signin_start(request: Request, provider: str) -> Response:
    if await _forged(request):
        return _refused(request)
    rt = _rt(request)
    try:
        url = await service.begin(
            rt, provider, purpose=service.SIGN_IN, binding=web.browser(request).binding
        )
    except (NotFoundError, AuthRefused) as err:
        return _message(request, "Cannot sign in", str(err), status=_status(err))
    return _to(url)


@router.post("/signout")
async def signout(request: Request) -> Response:
    if await _forged(request):
        return _refused(request)
    response = _to("/signin")
    web.end_session(response)
    return response


# --- connecting a calendar ---------------------------------------------------------------------


@router.get("/connect/{token}")
async def connect_page(request: Request, token: str) -> Response:
    rt = _rt(request)
    rep = await _connect_rep(request, token)
    if isinstance(rep, Response):
        return rep
    oauth = service.identity_providers(rt).get(rep.provider)
    if oauth is None:
        return _message(
            request,
            "Not available",
            f"Connecting a {rep.provider} calendar is not configured on this server.",
            status=404,
        )
    return _page(request, "connect.html", {"rep": rep, "token": token, "label": oauth.label})


@router.post("/connect/{token}")
async def connect_start(request: Request, token: str) -> Response:
    if await _forged(request):
        return _refused(request)
    rt = _rt(request)
    rep = await _connect_rep(request, token)
    if isinstance(rep, Response):
        return rep
    try:
        url = await service.begin(
            rt,
            rep.provider,
            purpose=service.CONNECT,
            binding=web.browser(request).binding,
            rep_id=rep.id,
            login_hint=rep.email,
        )
    except (NotFoundError, AuthRefused) as err:
        return _message(request, "Cannot connect", str(err), status=_status(err))
    return _to(url)


@router.get("/auth/{provider}/callback")
async def callback(request: Request, provider: str) -> Response:
    """The identity provider sends the browser back here (code, state): used once."""
    rt = _rt(request)
    params = {k: v for k, v in request.query_params.items() if k in CALLBACK_PARAMS}
    try:
        done = await service.finish(rt, provider, params, binding=web.browser(request).binding)
    except AuthRefused as err:
        log.info("web.auth_refused", extra={"provider": provider, "reason": err.reason})
        return _message(request, "Sign-in refused", err.reason, status=400)
    target = f"/reps/{done.rep_id}" if done.purpose == service.CONNECT else "/"
    response = _to(target)
    web.start_session(rt, response, done.identity.email, rt.clock.now())
    log.info("web.signed_in", extra={"provider": provider, "purpose": done.purpose})
    return response


CALLBACK_PARAMS = frozenset(
    {"code", "state", "error", "error_description", "scope", "session_state", "client_info"}
)


# --- the pages -----------------------------------------------------------------------------------


@router.get("/reps/{rep_id}")
async def rep_page(request: Request, rep_id: str) -> Response:
    page = await _viewers(request, service.rep_page, rep_id)
    if isinstance(page, Response):
        return page
    return _page(request, "rep.html", {"page": page})


@router.get("/team")
async def team_board(request: Request) -> Response:
    board = await _viewers(request, service.board)
    if isinstance(board, Response):
        return board
    chart = service.trend_chart(board.weeks)
    return _page(request, "board.html", {"board": board, "chart": chart})
