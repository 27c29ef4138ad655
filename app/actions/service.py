"""The action pages: ``show`` (GET: reads only, mail scanners open every link) and ``act``
(POST: does it once). Both answer a ``Page``: its status, its template and what it says.

A token is checked in this order: not ours (forged, altered) → ``404``; its nudge unknown
→ ``404``; past the horizon → ``410``; the meeting gone → ``410``; done already → ``200``
"nothing changed now"; superseded (the meeting is waived or secured, or a newer cycle's
nudge replaced this one) → ``409``. A ``send_invite`` refused by the guards → ``409`` with
the reason; a provider that refuses → ``502``/``503`` with a retry button (nothing was
sent, nothing half-written).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session

from app.actions import repository as repo
from app.db.models import Meeting, Nudge, Rep
from app.delivery.render import html_templates
from app.errors import NotFoundError, ProviderFailure, RequestError, SlotConflict
from app.meetings import invite
from app.meetings import repository as meetings_repo
from app.meetings import service as meetings
from app.nudges import actions as tokens
from app.nudges.compose import format_slot, format_time, zone_abbreviation
from app.nudges.service import prospect_timezone
from app.runtime import Runtime
from policies.hours import check_timezone
from policies.vocabulary import ActionKind, MeetingState, NudgeKind

FOLDER = Path(__file__).with_name("templates")
PAGES = html_templates(FOLDER)
SNOOZE_FOR = timedelta(days=1)
WAIVE_REASON = "no follow-up needed (one-click from the nudge)"


@cache
def texts() -> dict[str, dict[str, str]]:
    doc: dict[str, dict[str, str]] = yaml.safe_load(
        FOLDER.joinpath("texts.yaml").read_text(encoding="utf-8")
    )
    return doc


def locale_of(rep: Rep | None, accept_language: str | None) -> str:
    if rep is not None:
        return "fr" if rep.locale == "fr" else "en"
    return "fr" if (accept_language or "").strip().lower().startswith("fr") else "en"


@dataclass
class Page:
    status: int
    template: str
    locale: str
    context: dict[str, Any] = field(default_factory=dict)

    def render(self) -> str:
        t = texts()[self.locale]
        return PAGES.get_template(self.template).render(t=t, **self.context)


@dataclass
class _Found:
    token: tokens.ActionToken
    nudge: Nudge
    meeting: Meeting
    rep: Rep
    locale: str


def _refused(status: int, locale: str, reason: str, **extra: Any) -> Page:
    t = texts()[locale]
    return Page(
        status, "refused.html", locale, {"heading": t["refused_title"], "reason": reason, **extra}
    )


def _find(session: Session, rt: Runtime, raw: str, accept_language: str | None) -> _Found | Page:
    """The token's nudge, meeting and rep — or the page that says why not."""
    fallback = locale_of(None, accept_language)
    token = tokens.read(rt.keys, raw)
    if token is None:
        return _refused(404, fallback, texts()[fallback]["forged"])
    nudge = repo.nudge(session, token.nudge_id)
    rep = (
        None if nudge is None or nudge.rep_id is None else meetings_repo.rep(session, nudge.rep_id)
    )
    locale = locale_of(rep, accept_language)
    t = texts()[locale]
    if nudge is None or rep is None:
        return _refused(404, locale, t["unknown"])
    now = rt.clock.now()
    if now >= token.expires_at:
        when = format_slot(token.expires_at, rep.timezone, locale)
        return _refused(410, locale, t["expired"].format(when=when))
    meeting = None if nudge.meeting_id is None else meetings_repo.meeting(session, nudge.meeting_id)
    if meeting is None:
        return _refused(410, locale, t["gone"])
    if token.kind == ActionKind.SEND_INVITE and (
        token.slot is None or token.slot >= len(nudge.payload.get("suggested_slots") or [])
    ):
        return _refused(404, locale, t["forged"])
    return _Found(token=token, nudge=nudge, meeting=meeting, rep=rep, locale=locale)


def _superseded(session: Session, found: _Found) -> Page | None:
    t = texts()[found.locale]
    if found.meeting.state == MeetingState.WAIVED:
        return _refused(409, found.locale, t["superseded_waived"])
    if found.meeting.state == MeetingState.SECURED:
        return _refused(409, found.locale, t["superseded_secured"])
    if repo.newer_nudge(session, found.nudge) is not None:
        return _refused(409, found.locale, t["superseded_newer"])
    follow_up = found.meeting.follow_up
    if (
        found.nudge.payload.get("state") == MeetingState.NEEDS_NEXT_STEP
        and follow_up is not None
        and follow_up["event_id"] not in repo.events_sent_by(session, found.nudge.id)
    ):
        # The nudge asked for a follow-up and one was sent by other means: done with.
        return _refused(409, found.locale, t["superseded_invited"])
    return None


def _slot(found: _Found) -> tuple[datetime, datetime]:
    raw = found.nudge.payload["suggested_slots"][found.token.slot or 0]
    return datetime.fromisoformat(raw["start"]), datetime.fromisoformat(raw["end"])


def _about(session: Session, found: _Found) -> str:
    t = texts()[found.locale]
    account = meetings_repo.account(session, found.meeting.account_domain)
    name = account.name if account is not None and account.name else found.meeting.account_domain
    return t["about"].format(
        meeting=found.meeting.title or found.meeting.account_domain,
        account=name,
        when=format_slot(found.meeting.start, found.rep.timezone, found.locale),
    )


def _done_page(session: Session, found: _Found, result: dict[str, Any], *, already: bool) -> Page:
    t = texts()[found.locale]
    kind = found.token.kind
    context: dict[str, Any] = {"already": already, "about": _about(session, found)}
    if kind == ActionKind.SEND_INVITE:
        context["heading"] = t["done_moved"] if result.get("moved") else t["done_send_invite"]
        start = datetime.fromisoformat(result["start"])
        context["when"] = t["sent_at"].format(
            when=format_slot(start, found.rep.timezone, found.locale)
        )
        context["attendees"] = [a for a in result.get("attendees") or () if a != found.rep.email]
        context["video_link"] = result.get("video_link")
    elif kind == ActionKind.SNOOZE:
        context["heading"] = t["done_snooze"]
        until = datetime.fromisoformat(result["until"])
        context["what"] = t["snooze_what"].format(
            until=format_slot(until, found.rep.timezone, found.locale)
        )
    else:
        context["heading"] = t["done_waive"]
        context["what"] = t["waive_what"]
    return Page(200, "done.html", found.locale, context)


def _already(session: Session, found: _Found) -> Page | None:
    row = meetings_repo.action_result(session, found.token.key)
    if row is None or row.status != "done" or row.result is None:
        return None
    return _done_page(session, found, row.result, already=True)


def _open(session: Session, rt: Runtime, raw: str, accept_language: str | None) -> _Found | Page:
    """The token's nudge, meeting and rep while the action is still to do — or the page to show
    instead: why the link is refused, what was done already, or what superseded it."""
    found = _find(session, rt, raw, accept_language)
    if isinstance(found, Page):
        return found
    return _already(session, found) or _superseded(session, found) or found


# --- GET ----------------------------------------------------------------------------------------


def show(session: Session, rt: Runtime, raw: str, accept_language: str | None) -> Page:
    """What the action will do, with one button that POSTs to the same URL. Reads only."""
    found = _open(session, rt, raw, accept_language)
    if isinstance(found, Page):
        return found
    t = texts()[found.locale]
    kind = found.token.kind
    context: dict[str, Any] = {
        "kind": str(kind),
        "heading": t[f"title_{kind}"],
        "button": t[f"button_{kind}"],
        "about": _about(session, found),
        "action_url": tokens.url_of(rt.settings.public_url, raw),
    }
    if kind == ActionKind.SEND_INVITE:
        start, end = _slot(found)
        account = meetings_repo.account(session, found.meeting.account_domain)
        prospect_tz = prospect_timezone(found.rep, account)
        invitation = invite.invitation_for(session, rt, found.rep, found.meeting)
        follow_up = found.meeting.follow_up
        hold = meetings_repo.hold_of(session, found.meeting.id)
        local = start.astimezone(check_timezone(prospect_tz, field="timezone"))
        context |= {
            "rep_when": f"{format_slot(start, found.rep.timezone, found.locale)}"
            f"–{format_time(end, found.rep.timezone, found.locale)}",
            "prospect_label": t["slot_prospect"].format(zone=zone_abbreviation(local)),
            "prospect_when": f"{format_slot(start, prospect_tz, found.locale)}"
            f"–{format_time(end, prospect_tz, found.locale)}",
            "attendees": list(invitation.attendees),
            "subject": invitation.subject,
            "body": invitation.body,
            "video": invitation.video,
            "moves": t["moves"].format(
                title=follow_up.get("title") or invitation.subject,
                when=format_slot(
                    datetime.fromisoformat(follow_up["start"]), found.rep.timezone, found.locale
                ),
            )
            if follow_up
            else t["moves_declined"]
            if found.nudge.kind == NudgeKind.FOLLOW_UP_DECLINED
            else None,
            "holds": hold is not None and hold.status == "placed" and hold.start == start,
        }
    elif kind == ActionKind.SNOOZE:
        until = rt.clock.now() + SNOOZE_FOR
        context["what"] = t["snooze_what"].format(
            until=format_slot(until, found.rep.timezone, found.locale)
        )
    else:
        context["what"] = t["waive_what"]
    return Page(200, "confirm.html", found.locale, context)


# --- POST ---------------------------------------------------------------------------------------


def _act_in_db(
    session: Session, rt: Runtime, raw: str, accept_language: str | None
) -> Page | _Found:
    """Snooze and waive happen here, in one transaction; send_invite goes on outside."""
    found = _open(session, rt, raw, accept_language)
    if isinstance(found, Page):
        return found
    if found.token.kind == ActionKind.SEND_INVITE:
        return found
    now = rt.clock.now()
    if found.token.kind == ActionKind.SNOOZE:
        result = {"until": (now + SNOOZE_FOR).isoformat()}
    else:
        result = {"reason": WAIVE_REASON}
    if not meetings_repo.record_action(
        session,
        found.token.key,
        meeting_id=found.meeting.id,
        fingerprint="",
        result=result,
        now=now,
    ):
        meetings_repo.flush(session)
        return _already(session, found) or _done_page(session, found, result, already=True)
    if found.token.kind == ActionKind.SNOOZE:
        meetings.snooze(session, rt, found.meeting.id, now + SNOOZE_FOR)
    else:
        meetings.waive(session, rt, found.meeting.id, WAIVE_REASON)
    return _done_page(session, found, result, already=False)


def _sent_page(
    session: Session, rt: Runtime, raw: str, sent: invite.Sent, accept_language: str | None
) -> Page:
    found = _find(session, rt, raw, accept_language)
    if isinstance(found, Page):
        return found
    result = {
        "event_id": sent.event_id,
        "start": sent.start.isoformat(),
        "moved": sent.moved,
        "attendees": list(sent.attendees),
        "video_link": sent.video_link,
    }
    return _done_page(session, found, result, already=sent.already)


async def act(rt: Runtime, raw: str, accept_language: str | None) -> Page:
    """Do the action once; again answers "done already" and changes nothing."""
    found = await rt.db.run(_act_in_db, rt, raw, accept_language)
    if isinstance(found, Page):
        return found
    start, end = _slot(found)
    t = texts()[found.locale]
    req = invite.SendRequest(
        meeting_id=found.meeting.id,
        start=start,
        end=end,
        once_key=found.token.key,
        creation_key=f"{found.nudge.id}:{found.token.slot}",
    )
    action_url = tokens.url_of(rt.settings.public_url, raw)
    try:
        sent = await meetings.send_follow_up(rt, req)
    except SlotConflict as err:
        return _refused(409, found.locale, t["conflict"].format(detail=err.detail))
    except ProviderFailure as err:
        return _refused(
            err.status_code,
            found.locale,
            t["provider"].format(detail=err.detail),
            retry=True,
            action_url=action_url,
        )
    except NotFoundError:
        return _refused(410, found.locale, t["gone"])
    except RequestError as err:
        return _refused(err.status_code, found.locale, t["conflict"].format(detail=err.detail))
    return await rt.db.run(_sent_page, rt, raw, sent, accept_language)
