"""What the web pages do: sign-in and connection flows, who may see what, page figures.

Flows: ``begin`` keeps the flow under way in ``oauth_states`` (the state's hash, the
browser binding, the PKCE verifier and nonce encrypted) and answers the identity
provider's URL; ``finish`` takes the row (once), lets the provider redeem the code and
check the id_token, and — for a connection — checks that the person who consented is the
rep before the grant is kept. Anything refused keeps nothing.

Roles: an admin (``NEXTSTEP_ADMIN_EMAILS``) sees every rep; a manager the reps whose
``manager_email`` is theirs; a rep their own page. Anything else is "not found", so an id
changed in a URL tells nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app import providers as registry
from app.db.models import Meeting, Nudge, OAuthState, Rep
from app.errors import NotFoundError
from app.reps import service as reps
from app.runtime import Runtime
from app.web import repository as repo
from connectors.base import Identity, UserOAuth
from connectors.oidc import AuthRefused
from policies.vocabulary import OPEN_STATES, MeetingState, NudgeKind, RepStatus

FLOW_LIFETIME = timedelta(minutes=10)
MAX_FLOWS_PER_BROWSER = 20  # sign-ins under way at once from one browser


class TooManyFlows(AuthRefused):
    """This browser already has MAX_FLOWS_PER_BROWSER sign-ins under way."""


SIGN_IN, CONNECT = "signin", "connect"


def identity_providers(rt: Runtime) -> dict[str, UserOAuth]:
    return registry.user_oauth(rt.providers)


def redirect_uri(rt: Runtime, provider: str) -> str:
    return f"{rt.settings.public_url.rstrip('/')}/auth/{provider}/callback"


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


# --- flows -----------------------------------------------------------------------------------


async def begin(
    rt: Runtime,
    provider: str,
    *,
    purpose: str,
    binding: str,
    rep_id: str | None = None,
    login_hint: str | None = None,
) -> str:
    """The identity provider's URL for a new sign-in or connection in this browser."""
    oauth = identity_providers(rt).get(provider)
    if oauth is None:
        raise NotFoundError(f"sign-in with {provider!r} is not configured on this server")
    if await rt.db.run(repo.states_of_browser, binding) >= MAX_FLOWS_PER_BROWSER:
        raise TooManyFlows("too many sign-ins under way from this browser; try again later")
    state = secrets.token_urlsafe(32)
    url, pending = await asyncio.to_thread(
        oauth.begin,
        redirect_uri=redirect_uri(rt, provider),
        state=state,
        connect=purpose == CONNECT,
        login_hint=login_hint,
    )
    now = rt.clock.now()
    row = OAuthState(
        state_hash=_hash(state),
        purpose=purpose,
        provider=provider,
        rep_id=rep_id,
        browser=binding,
        pending=pending,
        created_at=now,
        expires_at=now + FLOW_LIFETIME,
    )
    await rt.db.run(_add_state, row, now)
    return url


def _add_state(session: Session, row: OAuthState, now: datetime) -> None:
    repo.prune_states(session, now)
    repo.add_state(session, row)


@dataclass(frozen=True)
class Finished:
    identity: Identity
    purpose: str
    rep_id: str | None


async def finish(rt: Runtime, provider: str, params: dict[str, str], *, binding: str) -> Finished:
    """Complete the flow the callback's ``state`` names; ``AuthRefused`` keeps nothing."""
    oauth = identity_providers(rt).get(provider)
    state = params.get("state", "")
    if oauth is None or not state:
        raise AuthRefused("this answer belongs to no sign-in under way")
    row = await rt.db.run(repo.take_state, _hash(state), rt.clock.now())
    if row is None or row.provider != provider:
        raise AuthRefused("this sign-in link was already used, has expired, or is not ours")
    if not secrets.compare_digest(row.browser, binding):
        raise AuthRefused("this sign-in was started in another browser")
    who, grant = await asyncio.to_thread(
        oauth.finish, redirect_uri=redirect_uri(rt, provider), pending=row.pending, params=params
    )
    if row.purpose == CONNECT:
        if row.rep_id is None or grant is None:
            raise AuthRefused("the provider gave no calendar access")
        rep = await rt.db.run(repo.rep, row.rep_id)
        if rep is None:
            raise AuthRefused("this rep is no longer registered")
        if rep.email.lower() != who.email:
            raise AuthRefused(
                f"you signed in as {who.email}; connect the calendar of {rep.email} instead"
            )
        try:
            await reps.connected(rt, rep.id, grant)
        except NotFoundError:
            raise AuthRefused("this rep is no longer registered") from None
    return Finished(identity=who, purpose=row.purpose, rep_id=row.rep_id)


# --- who sees what ---------------------------------------------------------------------------


@dataclass
class Viewer:
    email: str
    admin: bool
    rep: Rep | None
    team: list[Rep] = field(default_factory=list)

    @property
    def manages(self) -> bool:
        return self.admin or bool(self.team)

    def may_see(self, rep: Rep) -> bool:
        return (
            self.admin
            or rep.email.lower() == self.email
            or (rep.manager_email or "").lower() == self.email
        )


def viewer(session: Session, rt: Runtime, email: str) -> Viewer:
    admin = email.lower() in rt.settings.admin_emails
    team = repo.all_reps(session) if admin else repo.team_of(session, email)
    return Viewer(email=email, admin=admin, rep=repo.rep_by_email(session, email), team=team)


def visible_rep(session: Session, rt: Runtime, email: str, rep_id: str) -> tuple[Viewer, Rep]:
    who = viewer(session, rt, email)
    rep = repo.rep(session, rep_id)
    if rep is None or not who.may_see(rep):
        raise NotFoundError("no such rep among those you can see")
    return who, rep


# --- the rep's page --------------------------------------------------------------------------


@dataclass
class MeetingView:
    meeting: Meeting
    actions: list[dict[str, str]]
    nudge_kind: str | None


@dataclass
class RepPage:
    viewer: Viewer
    rep: Rep
    open_meetings: list[MeetingView]
    nudges: list[Nudge]
    connect_url: str | None
    health: str  # "ok" | "pending" | "failed" | "error"
    synced_at: datetime | None = None


HEALTH = {
    RepStatus.ACTIVE: "ok",
    RepStatus.SYNCING: "ok",
    RepStatus.PENDING_CONNECTION: "pending",
    RepStatus.AUTH_FAILED: "failed",
    RepStatus.SYNC_ERROR: "error",
}


def _actions(payload: dict[str, Any]) -> list[dict[str, str]]:
    """The nudge's own action links (send_invite, snooze, waive), as the nudge has them."""
    out = []
    for action in payload.get("actions") or ():
        if isinstance(action, dict) and isinstance(action.get("url"), str):
            out.append(
                {
                    "kind": str(action.get("kind", "")),
                    "url": action["url"],
                    "label": str(action.get("label") or action.get("kind") or "Open"),
                }
            )
    return out


def rep_page(session: Session, rt: Runtime, email: str, rep_id: str) -> RepPage:
    who, rep = visible_rep(session, rt, email, rep_id)
    recent = repo.nudges_of(session, rep.id, 20)
    latest: dict[str, Nudge] = {}
    for nudge in recent:  # newest first: the first one seen per meeting is the latest
        mid = nudge.meeting_id
        if mid and mid not in latest and nudge.kind != NudgeKind.ESCALATION:
            latest[mid] = nudge  # the rep's own nudge (an escalation is the manager's)
    views = []
    for m in repo.meetings_in_state(session, [rep.id], sorted(OPEN_STATES)):
        last = latest.get(m.id)
        views.append(
            MeetingView(
                meeting=m,
                actions=_actions(last.payload) if last else [],
                nudge_kind=last.kind if last else None,
            )
        )
    return RepPage(
        viewer=who,
        rep=rep,
        open_meetings=views,
        nudges=recent,
        connect_url=reps.connect_url(rt, rep.id) if rep.auth == "user" else None,
        health=HEALTH.get(rep.status, "error"),
        synced_at=cal.synced_at if (cal := repo.calendar_of(session, rep.id)) else None,
    )


# --- the manager's board ---------------------------------------------------------------------

COUNTED = (MeetingState.NEEDS_NEXT_STEP, MeetingState.INVITED, MeetingState.SECURED)


@dataclass
class RepRow:
    rep: Rep
    share_30: float | None
    share_90: float | None
    meetings_90: int
    at_risk_now: int
    escalations_30: int


@dataclass
class Week:
    start: datetime
    share: float | None
    meetings: int


@dataclass
class Board:
    viewer: Viewer
    rows: list[RepRow]
    accounts: list[Any]
    weeks: list[Week]


def secured_share(meetings: list[Meeting], missed: set[str]) -> float | None:
    """The share of prospect meetings secured within the windows: secured, and no window
    closed unmet on the way (no no_next_step / not_accepted / declined nudge). Upcoming
    and waived meetings do not count."""
    counted = [m for m in meetings if m.state in COUNTED]
    if not counted:
        return None
    kept = [m for m in counted if m.state == MeetingState.SECURED and m.id not in missed]
    return len(kept) / len(counted)


def board(session: Session, rt: Runtime, email: str, *, weeks: int = 12) -> Board:
    who = viewer(session, rt, email)
    if not who.manages:
        raise NotFoundError("there is no team board for you")
    now = rt.clock.now()
    team = who.team
    ids = [r.id for r in team]
    horizon = now - timedelta(days=max(90, weeks * 7))
    ended = repo.meetings_ended_between(session, ids, horizon, now)
    missed = repo.unanswered_window_meetings(session, [m.id for m in ended])
    escalations = repo.nudges_since(session, ids, now - timedelta(days=30), [NudgeKind.ESCALATION])
    open_now = repo.meetings_in_state(session, ids, sorted(OPEN_STATES))
    rows = []
    for rep in team:
        mine = [m for m in ended if m.rep_id == rep.id]
        recent_30 = [m for m in mine if m.end >= now - timedelta(days=30)]
        recent_90 = [m for m in mine if m.end >= now - timedelta(days=90)]
        rows.append(
            RepRow(
                rep=rep,
                share_30=secured_share(recent_30, missed),
                share_90=secured_share(recent_90, missed),
                meetings_90=len([m for m in recent_90 if m.state in COUNTED]),
                at_risk_now=len([m for m in open_now if m.rep_id == rep.id]),
                escalations_30=len([n for n in escalations if n.rep_id == rep.id]),
            )
        )
    domains = sorted({m.account_domain for m in ended} | {m.account_domain for m in open_now})
    start = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    trend = []
    for n in range(weeks - 1, -1, -1):
        lo, hi = start - timedelta(weeks=n), start - timedelta(weeks=n - 1)
        week = [m for m in ended if lo <= m.end < hi]
        trend.append(
            Week(
                start=lo,
                share=secured_share(week, missed),
                meetings=len([m for m in week if m.state in COUNTED]),
            )
        )
    return Board(viewer=who, rows=rows, accounts=repo.health_at_risk(session, domains), weeks=trend)


# --- the weekly trend as SVG -------------------------------------------------------------------


@dataclass
class Chart:
    width: int
    height: int
    bars: list[dict[str, Any]]
    baseline: int


def trend_chart(weeks: list[Week], *, width: int = 360, height: int = 140) -> Chart:
    """Bar geometry for the board's SVG: one bar per week, its height the secured share."""
    pad, label = 8, 18
    plot = height - label - pad
    step = (width - 2 * pad) / max(len(weeks), 1)
    bars = []
    for i, week in enumerate(weeks):
        share = week.share or 0.0
        h = round(plot * share)
        bars.append(
            {
                "x": round(pad + i * step + step * 0.15),
                "y": pad + plot - h,
                "w": max(round(step * 0.7), 1),
                "h": h,
                "label": week.start.strftime("%d %b"),
                "text": "no meetings"
                if week.share is None
                else f"{round(share * 100)}% of {week.meetings}",
                "empty": week.share is None,
                "lx": round(pad + i * step + step / 2),
            }
        )
    return Chart(width=width, height=height, bars=bars, baseline=pad + plot)
