"""Registering, reading and deleting reps."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.crash import crash_point
from app.db.models import Rep, WatchChannelRow
from app.errors import AlreadyExists, InvalidRequest, NotFoundError, ProviderNotConfigured
from app.reps import repository as repo
from app.reps.schemas import CalendarOut, RepIn, RepOut, WatchOut
from app.runtime import Runtime
from app.sync import channels
from app.sync.service import sync_calendar
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


async def provider_hours(rt: Runtime, body: RepIn) -> dict[str, Any] | None:
    """The rep's working hours as the provider knows them (Outlook's
    ``mailboxSettings.workingHours``), read on the rep's clock; used when none were given."""
    if body.working_hours is not None or body.provider not in rt.providers:
        return None
    ask = getattr(rt.provider(body.provider), "working_hours", None)
    if ask is None:
        return None
    try:
        known = await ask(CalendarRef(rep_id="", email=body.email, timezone=body.timezone))
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
    hours = await provider_hours(rt, body) or hours
    rep_id = await rt.db.run(_insert, rt, body, hours)
    crash_point("rep.inserted")
    watch_error = await channels.start_watch(rt, rep_id)
    await sync_calendar(rt, rep_id)
    if watch_error is not None:
        await rt.db.run(_mark, rep_id, watch_error)
    return await rt.db.run(read, rt, rep_id)


def _mark(session: Session, rep_id: str, error: str) -> None:
    rep = repo.get(session, rep_id)
    if rep is not None and rep.status != RepStatus.AUTH_FAILED:
        rep.status = (
            RepStatus.AUTH_FAILED if error.startswith("AuthFailed") else RepStatus.SYNC_ERROR
        )
        rep.status_detail = f"watching the calendar failed: {error}"


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


def list_all(session: Session, rt: Runtime) -> list[RepOut]:
    return [to_out(session, rt, r) for r in repo.all_reps(session)]


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
