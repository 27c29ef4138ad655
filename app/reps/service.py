"""Registering, reading and deleting reps."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app import providers as registry
from app.crash import crash_point
from app.db.models import Rep, WatchChannelRow
from app.errors import AlreadyExists, InvalidRequest, NotFoundError, ProviderNotConfigured
from app.meetings import service as meetings
from app.nudges import events as nudge_events
from app.reps import repository as repo
from app.reps.schemas import FIXED_FIELDS, CalendarOut, RepIn, RepOut, RepPatch, WatchOut
from app.runtime import Runtime
from app.secrets import value_of_signed
from app.sync import channels
from app.sync.service import sync_calendar, want_full_sync
from connectors.base import CalendarRef, ProviderError
from policies.business import country_of_zone, hours_in_zone
from policies.hours import WorkingHours, check_timezone
from policies.vocabulary import RepStatus

log = logging.getLogger(__name__)

PROVIDER_SETTING = {
    "google": "NEXTSTEP_GOOGLE_SERVICE_ACCOUNT_FILE",
    "microsoft": "NEXTSTEP_MS_TENANT_ID, NEXTSTEP_MS_CLIENT_ID and NEXTSTEP_MS_CLIENT_SECRET",
    "sandbox": "NEXTSTEP_SANDBOX=true",
}


USER_OAUTH_SETTING = {
    "google": "NEXTSTEP_GOOGLE_OAUTH_CLIENT_ID and NEXTSTEP_GOOGLE_OAUTH_CLIENT_SECRET",
    "microsoft": "NEXTSTEP_MS_OAUTH_CLIENT_ID and NEXTSTEP_MS_OAUTH_CLIENT_SECRET",
}


async def provider_hours(rt: Runtime, body: RepIn) -> dict[str, Any] | None:
    """The rep's working hours as the provider knows them (Outlook's
    ``mailboxSettings.workingHours``), read on the rep's clock; used when none were given."""
    if body.working_hours is not None or body.provider not in rt.providers:
        return None
    provider = rt.provider(body.provider)
    try:
        known = await provider.working_hours(
            CalendarRef(rep_id="", email=body.email, timezone=body.timezone)
        )
    except ProviderError as err:
        log.warning("rep.working_hours_unknown", extra={"email": body.email, "error": str(err)})
        return None
    if known is None:
        return None
    hours = hours_in_zone(
        known.days,
        known.start,
        known.end,
        known.time_zone,
        body.timezone,
        rt.clock.now().date(),
    )
    return hours.to_dict() if hours is not None else None


def _check_policy(rt: Runtime, name: str | None) -> None:
    """``None`` means the default policy; any other name must be a loaded policy."""
    if name is None:
        return
    try:
        rt.policies.get(name)
    except KeyError:
        names = ", ".join(p.name for p in rt.policies.policies)
        raise InvalidRequest(f"policy: no policy named {name!r} (known: {names})") from None


def validate(rt: Runtime, body: RepIn) -> dict[str, Any]:
    """Check what pydantic cannot: provider configured, zone, hours, policy."""
    if body.provider not in PROVIDER_SETTING:
        raise InvalidRequest(f"provider: {body.provider!r} is not a provider (google, microsoft)")
    if body.auth == "user":
        if body.provider not in registry.user_oauth(rt.providers):
            raise ProviderNotConfigured(
                f"auth: reps cannot connect their own {body.provider!r} calendars on this "
                f"server (set {USER_OAUTH_SETTING.get(body.provider, 'an OAuth client')})"
            )
    elif body.provider not in rt.providers:
        raise ProviderNotConfigured(
            f"provider: {body.provider!r} is not configured on this server "
            f"(set {PROVIDER_SETTING[body.provider]})"
        )
    try:
        check_timezone(body.timezone, field="timezone")
        hours = WorkingHours.parse(
            body.working_hours.model_dump() if body.working_hours else None, field="working_hours"
        )
    except ValueError as err:
        raise InvalidRequest(str(err)) from err
    _check_policy(rt, body.policy)
    return hours.to_dict()


def _insert(session: Session, rt: Runtime, body: RepIn, hours: dict[str, Any]) -> str:
    if repo.by_email(session, body.email) is not None:
        raise AlreadyExists(f"email: a rep with e-mail {body.email} is already registered")
    # The initial sync is asked for in the row and leased to this process.
    rep = repo.add(
        session,
        rep_id=str(uuid.uuid4()),
        fields={
            "email": body.email,
            "provider": body.provider,
            "timezone": body.timezone,
            "locale": body.locale,
            "working_hours": hours,
            "manager_email": body.manager_email,
            "policy": body.policy,
            "country": body.country,
            "auth": body.auth,
        },
        now=rt.clock.now(),
        owner=rt.instance_id,
        lease=rt.lease,
        pending=body.auth == "user",
    )
    return rep.id


async def register(rt: Runtime, body: RepIn) -> RepOut:
    """Create the rep, watch the calendar, then run the initial full sync.

    Watching first means a change made during the initial sync still notifies us.
    Provider failures do not fail the request: the rep's ``status`` tells, and the
    background jobs retry.
    """
    hours = validate(rt, body)
    hours = await provider_hours(rt, body) or hours
    rep_id = await rt.db.run(_insert, rt, body, hours)
    crash_point("rep.inserted")
    if body.auth == "user":  # pending_connection: watched and synced once connected
        return await rt.db.run(read, rt, rep_id)
    return await _watch_and_sync(rt, rep_id)


async def _watch_and_sync(rt: Runtime, rep_id: str) -> RepOut:
    watch_error = await channels.start_watch(rt, rep_id)
    await sync_calendar(rt, rep_id)
    if watch_error is not None:
        await rt.db.run(_mark, rt, rep_id, watch_error)
    return await rt.db.run(read, rt, rep_id)


def _mark(session: Session, rt: Runtime, rep_id: str, error: str) -> None:
    rep = repo.get(session, rep_id)
    if rep is not None and rep.status != RepStatus.AUTH_FAILED:
        status = RepStatus.AUTH_FAILED if error.startswith("AuthFailed") else RepStatus.SYNC_ERROR
        nudge_events.set_rep_status(
            session, rt, rep, status, f"watching the calendar failed: {error}", rt.clock.now()
        )


def _patch(session: Session, rt: Runtime, rep_id: str, body: RepPatch) -> RepOut:
    rep = repo.get(session, rep_id)
    if rep is None:
        raise NotFoundError(f"no rep with id {rep_id!r}")
    given = body.model_fields_set
    for name in FIXED_FIELDS:
        if name in given:
            raise InvalidRequest(f"{name}: cannot be changed (delete the rep and register again)")
    for name in ("timezone", "locale"):
        if name in given and getattr(body, name) is None:
            raise InvalidRequest(f"{name}: may not be null")
    changes: dict[str, Any] = {}
    try:
        if "timezone" in given and body.timezone is not None:
            check_timezone(body.timezone, field="timezone")
            changes["timezone"] = body.timezone
        if "working_hours" in given:
            changes["working_hours"] = WorkingHours.parse(
                body.working_hours.model_dump() if body.working_hours else None,
                field="working_hours",
            ).to_dict()
    except ValueError as err:
        raise InvalidRequest(str(err)) from err
    if "policy" in given:
        _check_policy(rt, body.policy)
    for name in ("locale", "manager_email", "policy", "country"):
        if name in given:
            changes[name] = getattr(body, name)
    for name, value in changes.items():
        setattr(rep, name, value)
    if changes:
        # Windows, slots and escalations read these: decide the rep's meetings again.
        repo.flush(session)
        meetings.evaluate(session, rt, rep, repo.meetings_of(session, rep_id), now=rt.clock.now())
    return to_out(session, rt, rep)


async def patch(rt: Runtime, rep_id: str, body: RepPatch) -> RepOut:
    """Change what the CRM registered (never ``email`` nor ``provider``)."""
    return await rt.db.run(_patch, rt, rep_id, body)


def _resync(session: Session, rt: Runtime, rep_id: str) -> RepOut:
    rep = repo.get(session, rep_id)
    if rep is None:
        raise NotFoundError(f"no rep with id {rep_id!r}")
    want_full_sync(session, rep_id, rt.clock.now())
    repo.flush(session)
    return to_out(session, rt, rep)


async def resync(rt: Runtime, rep_id: str) -> RepOut:
    """A full sync of the rep's calendar, run by the next free sync worker (at once)."""
    out = await rt.db.run(_resync, rt, rep_id)
    rt.wake.sync(rt.clock.now())
    return out


# --- per-user connections ------------------------------------------------------------

connect_url = nudge_events.connect_url
CONNECT_PURPOSE = nudge_events.CONNECT_PURPOSE


def rep_of_connect_token(rt: Runtime, token: str) -> str | None:
    """The rep id a connect token was made for; None when forged or malformed."""
    return value_of_signed(rt.keys, token, CONNECT_PURPOSE)


async def connected(rt: Runtime, rep_id: str, grant: str) -> RepOut:
    """The rep connected the calendar: keep the grant (encrypted), watch, sync now."""
    stored = await rt.db.run(
        repo.connected,
        rep_id,
        grant,
        now=rt.clock.now(),
        owner=rt.instance_id,
        lease=rt.lease,
    )
    if stored is None:
        raise NotFoundError(f"no rep with id {rep_id!r}")
    return await _watch_and_sync(rt, rep_id)


async def store_grant(rt: Runtime, rep_id: str, grant: str) -> None:
    """A provider rotated the rep's grant during a call: keep the new one."""
    await rt.db.run(repo.set_grant, rep_id, grant)


# What RepOut shows of the row as it is stored; the other fields are derived in to_out.
COPIED_FIELDS = (
    "id",
    "email",
    "provider",
    "timezone",
    "locale",
    "working_hours",
    "manager_email",
    "status",
    "status_detail",
    "created_at",
)


def to_out(session: Session, rt: Runtime, rep: Rep) -> RepOut:
    cal = repo.calendar_of(session, rep.id)
    watches = repo.channels_of(session, rep.id)
    return RepOut(
        **{name: getattr(rep, name) for name in COPIED_FIELDS},
        policy=rep.policy or rt.policies.default.name,
        country=rep.country or country_of_zone(rep.timezone),
        calendar=CalendarOut(
            synced_at=cal.synced_at if cal else None,
            sync_pending=bool(cal and cal.sync_wanted_at),
            last_error=cal.last_error if cal else None,
            watch=[WatchOut(channel_id=w.channel_id, expires_at=w.expires_at) for w in watches],
        ),
        auth=rep.auth or "admin",
        connect_url=connect_url(rt, rep.id) if rep.auth == "user" else None,
    )


def read(session: Session, rt: Runtime, rep_id: str) -> RepOut:
    rep = repo.get(session, rep_id)
    if rep is None:
        raise NotFoundError(f"no rep with id {rep_id!r}")
    return to_out(session, rt, rep)


def list_all(
    session: Session, rt: Runtime, *, limit: int | None = None, offset: int = 0
) -> list[RepOut]:
    return [to_out(session, rt, r) for r in repo.all_reps(session, limit=limit, offset=offset)]


@dataclass(frozen=True, kw_only=True, slots=True)
class _Leaving:
    """A rep being deleted and its channels, as the provider must be told to stop them."""

    rep: Rep
    channels: list[WatchChannelRow]


def _leaving(session: Session, rep_id: str) -> _Leaving:
    rep = repo.get(session, rep_id)
    if rep is None:
        raise NotFoundError(f"no rep with id {rep_id!r}")
    return _Leaving(rep=rep, channels=repo.channels_of(session, rep_id))


async def delete(rt: Runtime, rep_id: str) -> None:
    """Stop the provider channels, then delete the rep and all its data."""
    leaving = await rt.db.run(_leaving, rep_id)
    # app.sync.channels.stop_all takes the rows it stops (loaded, detached: read-only here).
    await channels.stop_all(rt, leaving.rep, leaving.channels)
    oauth = registry.user_oauth(rt.providers).get(leaving.rep.provider)
    if oauth is not None and leaving.rep.oauth_grant:
        try:  # the rep's own grant: revoked at the provider where it can be
            await asyncio.to_thread(oauth.release, rep_id, leaving.rep.oauth_grant)
        except Exception:  # noqa: BLE001 - the rep is deleted all the same
            log.warning("reps.grant_release_failed", extra={"rep_id": rep_id})
    await rt.db.run(repo.delete, rep_id)
