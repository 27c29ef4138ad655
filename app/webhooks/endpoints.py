"""HTTP: provider webhooks. Verify → store → acknowledge at once; sync afterwards."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import PlainTextResponse
from sqlalchemy.orm import Session

from app.api import runtime
from app.db.models import WatchChannelRow
from app.errors import InvalidRequest
from app.runtime import Runtime
from app.sync.service import want_sync
from app.webhooks.service import Refused, receive
from connectors.google.notifications import parse_notification
from connectors.microsoft import notifications as graph

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@router.post("/google", status_code=200)
async def google(request: Request, rt: Runtime = Depends(runtime)) -> Response:
    """Google push notification: everything is in the X-Goog-* headers."""
    try:
        note = parse_notification(request.headers)
    except ValueError as err:
        raise InvalidRequest(str(err)) from err
    await receive(
        rt,
        "google",
        channel_id=note.channel_id,
        token=note.token or "",
        resource_id=note.resource_id,
        dedupe_key=f"{note.channel_id}:{note.message_number}",
        kind="sync" if note.is_sync else "change",
    )
    return Response(status_code=200)


def _validation(request: Request) -> Response | None:
    token = graph.validation_token(request.query_params)
    if token is None:
        return None
    return PlainTextResponse(token, status_code=200)


@router.post("/microsoft", status_code=202)
async def microsoft(request: Request, rt: Runtime = Depends(runtime)) -> Response:
    """Graph change notifications; also answers the validationToken handshake."""
    handshake = _validation(request)
    if handshake is not None:
        return handshake
    try:
        items = graph.parse_change_notifications(await request.body())
    except ValueError as err:
        raise InvalidRequest(str(err)) from err
    accepted, refused = 0, []
    now_key = rt.clock.now().strftime("%Y%m%dT%H%M%S")
    for item in items:
        # Graph has no delivery id. The resource's etag tells a redelivery (same etag) from
        # a second change to the same event (new etag); without one, identical
        # notifications within a second are one.
        version = (item.etag or now_key)[:120]
        try:
            await receive(
                rt,
                "microsoft",
                channel_id=item.subscription_id,
                token=item.client_state or "",
                resource_id=None,
                dedupe_key=f"{item.subscription_id}:{item.change_type}:{item.resource_id or item.resource}:{version}",
            )
            accepted += 1
        except Refused as err:
            refused.append(err.detail)
    if items and not accepted:
        raise Refused("; ".join(refused))
    return Response(status_code=202)


def _lifecycle(
    session: Session, rt: Runtime, subscription_id: str, client_state: str, event: str
) -> None:
    row = session.get(WatchChannelRow, subscription_id)
    if row is None or row.provider != "microsoft" or not graph.verify(client_state, row.token):
        raise Refused(f"unknown subscription or clientState mismatch for {subscription_id[:80]!r}")
    now = rt.clock.now()
    if event in ("reauthorizationRequired", "subscriptionRemoved"):
        # Renewal PATCHes the subscription; one that is gone (404) is created anew.
        row.renew_at = now
        row.lease_owner = row.lease_until = None
    if event in ("missed", "subscriptionRemoved"):
        want_sync(session, row.rep_id, now)


@router.post("/microsoft/lifecycle", status_code=202)
async def microsoft_lifecycle(request: Request, rt: Runtime = Depends(runtime)) -> Response:
    """Graph lifecycle notifications: reauthorizationRequired, missed, subscriptionRemoved."""
    handshake = _validation(request)
    if handshake is not None:
        return handshake
    try:
        items = graph.parse_lifecycle_notifications(await request.body())
    except ValueError as err:
        raise InvalidRequest(str(err)) from err
    refused: list[str] = []
    for item in items:
        try:
            await rt.db.intake(
                _lifecycle, rt, item.subscription_id, item.client_state or "", item.lifecycle_event
            )
        except Refused as err:
            refused.append(err.detail)
        else:
            log.info(
                "webhook.graph_lifecycle",
                extra={"event": item.lifecycle_event, "subscription_id": item.subscription_id},
            )
    if items and len(refused) == len(items):
        raise Refused("; ".join(refused))
    rt.wake.renewals(None)
    rt.wake.sync(None)
    return Response(status_code=202)
