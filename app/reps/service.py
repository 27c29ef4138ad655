"""Registering, reading and deleting reps."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.crash import crash_point
from app.db.models import Rep, WatchChannelRow
from app.errors import AlreadyExists, InvalidRequest, NotFoundError, ProviderNotConfigured
from app.meetings import service as meetings
from app.nudges import events as nudge_events
from app.reps import repository as repo
from app.reps.schemas import FIXED_FIELDS, CalendarOut, RepIn, RepOut, RepPatch, WatchOut
from app.runtime import Runtime
from app.sync import channels
from app.sync.service import sync_calendar, want_full_sync
from policies.business import country_of_zone
from policies.hours import WorkingHours, check_timezone
from policies.vocabulary import RepStatus

PROVIDER_SETTING = {
    "google": "NEXTSTEP_GOOGLE_SERVICE_ACCOUNT_FILE",
    "microsoft": "NEXTSTEP_MS_TENANT_ID, NEXTSTEP_MS_CLIENT_ID and NEXTSTEP_MS_CLIENT_SECRET",
    "sandbox": "NEXTSTEP_SANDBOX=true",
}


def validate(rt: Runtime, body: RepIn) -> dict[str, Any]:
    """Check what pydantic cannot: provider configured, zone, hours, policy."""
    if body.provider not in PROVIDER_SETTING:
        raise InvalidRequest(f"provider: {body.provider!r} is not a provider (google, microsoft)")
    if body.provider not in rt.providers:
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
    if body.policy is not None:
        try:
            rt.policies.get(body.policy)
        except KeyError:
            names = ", ".join(p.name for p in rt.policies.policies)
            raise InvalidRequest(
                f"policy: no policy named {body.policy!r} (known: {names})"
            ) from None
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
        },
        now=rt.clock.now(),
        owner=rt.instance_id,
        lease=rt.lease,
    )
    return rep.id


async def register(rt: Runtime, body: RepIn) -> RepOut:
    """Create the rep, watch the calendar, then run the initial full sync.

    Watching first means a change made during the initial sync still notifies us.
    Provider failures do not fail the request: the rep's ``status`` tells, and the
    background jobs retry.
    """
    hours = validate(rt, body)
    rep_id = await rt.db.run(_insert, rt, body, hours)
    crash_point("rep.inserted")
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
    if "policy" in given and body.policy is not None:
        try:
            rt.policies.get(body.policy)
        except KeyError:
            names = ", ".join(p.name for p in rt.policies.policies)
            raise InvalidRequest(
                f"policy: no policy named {body.policy!r} (known: {names})"
            ) from None
    for name in ("locale", "manager_email", "policy"):
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


def to_out(session: Session, rt: Runtime, rep: Rep) -> RepOut:
    cal = repo.calendar_of(session, rep.id)
    watches = repo.channels_of(session, rep.id)
    return RepOut(
        id=rep.id,
        email=rep.email,
        provider=rep.provider,
        timezone=rep.timezone,
        locale=rep.locale,
        working_hours=rep.working_hours,
        manager_email=rep.manager_email,
        policy=rep.policy or rt.policies.default.name,
        country=rep.country or country_of_zone(rep.timezone),
        status=rep.status,
        status_detail=rep.status_detail,
        created_at=rep.created_at,
        calendar=CalendarOut(
            synced_at=cal.synced_at if cal else None,
            sync_pending=bool(cal and cal.sync_wanted_at),
            last_error=cal.last_error if cal else None,
            watch=[WatchOut(channel_id=w.channel_id, expires_at=w.expires_at) for w in watches],
        ),
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
    await rt.db.run(repo.delete, rep_id)
