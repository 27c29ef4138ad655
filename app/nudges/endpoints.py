"""HTTP: /v1/nudges."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api import Authorized, runtime
from app.db.models import Delivery, Nudge, Rep
from app.errors import InvalidRequest, NotFoundError
from app.runtime import Runtime
from policies.state import NUDGE_KINDS

router = APIRouter(prefix="/v1/nudges", tags=["nudges"], dependencies=[Authorized])


def list_nudges(
    session: Session,
    *,
    rep_id: str | None,
    meeting_id: str | None,
    kind: str | None,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    if kind is not None and kind not in (*NUDGE_KINDS, "account_at_risk"):
        raise InvalidRequest(f"kind: {kind!r} is not a nudge kind ({', '.join(NUDGE_KINDS)})")
    if rep_id is not None and session.get(Rep, rep_id) is None:
        raise NotFoundError(f"no rep with id {rep_id!r}")
    stmt = select(Nudge).where(Nudge.kind != "account.risk_changed")  # a CRM event, not a nudge
    if rep_id:
        stmt = stmt.where(Nudge.rep_id == rep_id)
    if meeting_id:
        stmt = stmt.where(Nudge.meeting_id == meeting_id)
    if kind:
        stmt = stmt.where(Nudge.kind == kind)
    nudges = list(
        session.scalars(stmt.order_by(Nudge.created_at, Nudge.id).limit(limit).offset(offset))
    )
    ids = [n.id for n in nudges]
    deliveries: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for i in range(0, len(ids), 500):
        for d in session.scalars(select(Delivery).where(Delivery.nudge_id.in_(ids[i : i + 500]))):
            deliveries[d.nudge_id].append(
                {
                    "channel": d.channel,
                    "status": d.status,
                    "attempts": d.attempts,
                    "last_error": d.last_error,
                    "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
                }
            )
    return [{**n.payload, "deliveries": deliveries[n.id]} for n in nudges]


@router.get("")
async def get_nudges(
    rep_id: str | None = None,
    meeting_id: str | None = None,
    kind: str | None = None,
    limit: int = Query(default=500, ge=1, le=5000),
    offset: int = Query(default=0, ge=0),
    rt: Runtime = Depends(runtime),
) -> Any:
    """Every nudge produced, delivered or not, oldest first."""
    items = await rt.db.run(
        list_nudges, rep_id=rep_id, meeting_id=meeting_id, kind=kind, limit=limit, offset=offset
    )
    return {"items": items}
