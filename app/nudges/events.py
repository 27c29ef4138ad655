"""Events for the CRM (``meeting.state_changed``, ``rep.status_changed``) and the
``connection_lost`` nudge.

An event is stored like a nudge — a ``nudges`` row under a unique key, its outbox rows in
the same transaction — so it is signed, retried and deduplicated exactly like one; a
``crm_events`` row gives it its place in the log that ``GET /v1/events`` pages through.
Events are recorded whether or not a webhook is configured (a CRM may poll instead).

A rep's status changes go through ``set_rep_status``: it emits the event, and when the
rep's access is lost (``auth_failed``, or a watch that cannot be renewed) it produces one
``connection_lost`` nudge per outage — to the manager, else to ``NEXTSTEP_ADMIN_EMAIL``.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.db.models import Rep
from app.delivery import service as delivery
from app.errors import InvalidRequest, NotFoundError
from app.nudges import repository as repo
from app.runtime import Runtime
from app.secrets import signed
from policies.vocabulary import (
    EVENT_TYPES,
    MEETING_STATE_CHANGED,
    REP_STATUS_CHANGED,
    NudgeKind,
    RepStatus,
)

log = logging.getLogger(__name__)
MAX_PAGE = 500


def record(
    session: Session,
    rt: Runtime,
    *,
    type: str,
    fields: dict[str, Any],
    dedupe_key: str,
    rep_id: str | None,
    account_domain: str | None,
    now: datetime,
) -> str | None:
    """Store one event and queue it on the channels that take events; None when known."""
    event_id = str(uuid.uuid4())
    body: dict[str, Any] = {"type": type, "id": event_id, "occurred_at": now.isoformat()}
    body.update(fields)
    created = repo.insert(
        session,
        nudge_id=event_id,
        dedupe_key=dedupe_key,
        kind=type,
        rep_id=rep_id,
        meeting_id=None,  # an event is not a nudge of the meeting (its kinds stay nudges')
        account_domain=account_domain,
        recipient_email=None,
        payload=body,
        now=now,
    )
    if not created:
        return None
    repo.log_event(session, event_id=event_id, type=type, now=now)
    delivery.enqueue_event(session, rt, event_id, type, now)
    log.info("crm.event", extra={"event_id": event_id, "type": type})
    return event_id


def meeting_state_changed(
    session: Session,
    rt: Runtime,
    *,
    meeting: dict[str, Any],
    rep_id: str,
    previous_state: str | None,
    now: datetime,
) -> str | None:
    """``meeting`` is the meeting as ``GET /v1/meetings/{id}`` shows it, after the change."""
    return record(
        session,
        rt,
        type=MEETING_STATE_CHANGED,
        fields={"meeting": meeting, "previous_state": previous_state},
        dedupe_key=(f"event:{meeting['id']}:{previous_state}>{meeting['state']}:{now.isoformat()}"),
        rep_id=rep_id,
        account_domain=meeting.get("account_domain"),
        now=now,
    )


def rep_json(rep: Rep) -> dict[str, Any]:
    """The rep as the CRM registered it, with its status (``GET /v1/reps/{id}`` minus the
    calendar's sync details)."""
    return {
        "id": rep.id,
        "email": rep.email,
        "provider": rep.provider,
        "timezone": rep.timezone,
        "locale": rep.locale,
        "working_hours": rep.working_hours,
        "manager_email": rep.manager_email,
        "policy": rep.policy,
        "status": rep.status,
        "status_detail": rep.status_detail,
        "created_at": rep.created_at.isoformat(),
    }


def set_rep_status(
    session: Session,
    rt: Runtime,
    rep: Rep,
    status: RepStatus,
    detail: str | None,
    now: datetime,
    *,
    connection_lost: bool | None = None,
) -> None:
    """Change the rep's status; a change emits ``rep.status_changed``.

    ``connection_lost`` says whether this is an outage the manager must hear of (default:
    ``auth_failed``); back to ``active`` closes the outage, so the next one tells again.
    """
    previous = rep.status
    rep.status, rep.status_detail = status, detail
    if previous != status:
        record(
            session,
            rt,
            type=REP_STATUS_CHANGED,
            fields={"rep": rep_json(rep), "previous_status": previous},
            dedupe_key=f"event:rep:{rep.id}:{previous}>{status}:{now.isoformat()}",
            rep_id=rep.id,
            account_domain=None,
            now=now,
        )
    lost = status == RepStatus.AUTH_FAILED if connection_lost is None else connection_lost
    if status == RepStatus.ACTIVE:
        rep.connection_lost_at = None
    elif lost and rep.connection_lost_at is None:
        produce_connection_lost(session, rt, rep, now)


CONNECTION_LOST_TEXT = {
    "en": (
        "NextStep lost access to the calendar of {email} ({provider}): {detail}. "
        "Until it is restored, none of their prospect meetings is tracked and no nudge "
        "reaches them. {fix}"
    ),
    "fr": (
        "NextStep n'a plus accès à l'agenda de {email} ({provider}) : {detail}. "
        "Tant que l'accès n'est pas rétabli, aucune de ses réunions prospects n'est suivie "
        "et aucune relance ne lui parvient. {fix}"
    ),
}
CONNECTION_LOST_FIX = {
    "en": {
        "admin": 'Ask your workspace admin to restore the access (README, "Connecting calendars").',
        "user": "They reconnect it with this link: {url}",
    },
    "fr": {
        "admin": "Demandez à l'administrateur de rétablir l'accès.",
        "user": "Ce lien permet de reconnecter l'agenda : {url}",
    },
}


CONNECT_PURPOSE = "reps.connect"


def connect_url(rt: Runtime, rep_id: str) -> str:
    """The link a rep opens to connect (or reconnect) their own calendar: the rep id,
    signed with the key ring, under NEXTSTEP_PUBLIC_URL."""
    token = signed(rt.keys, rep_id, CONNECT_PURPOSE)
    return f"{rt.settings.public_url.rstrip('/')}/connect/{token}"


def produce_connection_lost(session: Session, rt: Runtime, rep: Rep, now: datetime) -> str | None:
    """One ``connection_lost`` nudge for this outage, to the manager (else the admin)."""
    rep.connection_lost_at = now
    recipient = rep.manager_email or rt.settings.admin_email
    nudge_id = str(uuid.uuid4())
    locale = "fr" if rep.locale == "fr" else "en"
    url = connect_url(rt, rep.id) if rep.auth == "user" else None
    fix = CONNECTION_LOST_FIX[locale]["user" if url else "admin"].format(url=url)
    message = CONNECTION_LOST_TEXT[locale].format(
        email=rep.email,
        provider=rep.provider,
        detail=(rep.status_detail or rep.status).rstrip("."),
        fix=fix,
    )
    payload: dict[str, Any] = {
        "id": nudge_id,
        "kind": NudgeKind.CONNECTION_LOST,
        "created_at": now.isoformat(),
        "rep": {"id": rep.id, "email": rep.email, "timezone": rep.timezone},
        "meeting": None,
        "suggested_slots": [],
        "draft_invite": None,
        "message": message,
        # Extensions beyond the contract's payload.
        "status": rep.status,
        "status_detail": rep.status_detail,
        "recipient": recipient,
        "connect_url": url,  # a rep who connected their own calendar reconnects there
    }
    created = repo.insert(
        session,
        nudge_id=nudge_id,
        dedupe_key=f"{rep.id}:connection_lost:{now.isoformat()}",
        kind=NudgeKind.CONNECTION_LOST,
        rep_id=rep.id,
        meeting_id=None,
        account_domain=None,
        recipient_email=recipient,
        payload=payload,
        now=now,
    )
    if not created:
        return None
    delivery.enqueue(session, rt, nudge_id, recipient, now)
    log.warning(
        "nudge.connection_lost",
        extra={"nudge_id": nudge_id, "rep_id": rep.id, "recipient": recipient},
    )
    return nudge_id


# --- GET /v1/events ----------------------------------------------------------------------------


def list_events(
    session: Session, *, after: str | None, type: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Events in the order they were recorded, after the event ``after``; and the id to
    pass as ``after`` for the next page (None: this page is the last for now)."""
    if type is not None and type not in EVENT_TYPES:
        raise InvalidRequest(f"type: {type!r} is not an event type ({', '.join(EVENT_TYPES)})")
    after_seq = 0
    if after is not None:
        seq = repo.event_seq(session, after)
        if seq is None:
            raise NotFoundError(f"after: no event with id {after!r}")
        after_seq = seq
    rows = repo.events_after(session, after_seq=after_seq, type=type, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return [payload for _, payload in rows], (rows[-1][1]["id"] if more and rows else None)
