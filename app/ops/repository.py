"""All SQL of /metrics: the cluster's shared work, read in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Calendar, Delivery, Meeting, WatchChannelRow
from policies.vocabulary import DeliveryStatus


@dataclass(frozen=True, kw_only=True, slots=True)
class ClusterGauges:
    """Shared-work figures, the same on every replica (seconds and counts)."""

    sync_lag: dict[str, float]  # provider → age of the oldest sync request not yet done
    sync_pending: dict[str, int]  # provider → calendars wanting a sync now
    sync_staleness: dict[str, float]  # provider → time since the least recently synced one
    due_lag: float
    due_count: int
    delivery_lag: float
    delivery_count: int
    deliveries_failed: int
    renewals_due: int


def cluster_gauges(session: Session, now: datetime) -> ClusterGauges:
    """Shared-work figures, read in one transaction."""

    def age(oldest: datetime | None) -> float:
        return max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0

    sync_rows = session.execute(
        select(Calendar.provider, func.min(Calendar.sync_wanted_at), func.count())
        .where(Calendar.sync_wanted_at.is_not(None), Calendar.sync_wanted_at <= now)
        .group_by(Calendar.provider)
    ).all()
    synced_rows = session.execute(
        select(Calendar.provider, func.min(Calendar.synced_at)).group_by(Calendar.provider)
    ).all()
    due_oldest, due_count = session.execute(
        select(func.min(Meeting.due_at), func.count()).where(
            Meeting.due_at.is_not(None), Meeting.due_at <= now
        )
    ).one()
    del_oldest, del_count = session.execute(
        select(func.min(Delivery.next_attempt_at), func.count()).where(
            Delivery.status == DeliveryStatus.PENDING, Delivery.next_attempt_at <= now
        )
    ).one()
    failed = session.scalar(select(func.count()).where(Delivery.status == DeliveryStatus.FAILED))
    renewals = session.scalar(select(func.count()).where(WatchChannelRow.renew_at <= now))
    return ClusterGauges(
        sync_lag={p: age(t) for p, t, _ in sync_rows},
        sync_pending={p: n for p, _, n in sync_rows},
        sync_staleness={p: age(t) for p, t in synced_rows},
        due_lag=age(due_oldest),
        due_count=due_count,
        delivery_lag=age(del_oldest),
        delivery_count=del_count,
        deliveries_failed=failed or 0,
        renewals_due=renewals or 0,
    )
