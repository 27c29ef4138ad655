"""Tables. Times are stored in UTC (timezone-aware on PostgreSQL, UTC text on SQLite).

Work is claimed from rows with leases (``lease_owner``/``lease_until``) so several
replicas share it without doing anything twice; see app/db/leases.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.secrets import EncryptedText
from connectors.base import CalendarRef
from policies.vocabulary import (
    ActorSide,
    DeliveryStatus,
    HealthLevel,
    HistoryKind,
    MeetingState,
    NudgeKind,
    RepStatus,
)

E = TypeVar("E", bound=StrEnum)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class StrEnumColumn(TypeDecorator[E], Generic[E]):
    """A ``StrEnum`` stored as its plain text (same column as before: ``VARCHAR(n)``).

    Members go in as their value and come back as members, so rows speak the vocabulary
    of policies/vocabulary.py, and the schema is the one of a string column.
    """

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Any) -> E | None:
        return None if value is None else self.enum(value)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class Rep(Base):
    __tablename__ = "reps"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    provider: Mapped[str] = mapped_column(String(20))
    timezone: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(8), default="en")
    working_hours: Mapped[dict[str, Any]] = mapped_column(JSON)
    manager_email: Mapped[str | None] = mapped_column(String(320))
    policy: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(2))  # None: from the time zone
    status: Mapped[RepStatus] = mapped_column(
        StrEnumColumn(RepStatus, 20), default=RepStatus.SYNCING
    )
    status_detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    # When this outage's connection_lost nudge went out (None: connected, or not told yet).
    connection_lost_at: Mapped[datetime | None]
    # "admin": the deployment's delegation / application permissions reach the calendar;
    # "user": the rep connected it (OAuth), and oauth_grant holds the rep's own grant.
    auth: Mapped[str] = mapped_column(String(10), default="admin", server_default="admin")
    oauth_grant: Mapped[str | None] = mapped_column(EncryptedText("reps.oauth_grant"))

    def calendar_ref(self) -> CalendarRef:
        """Which calendar provider calls about this rep are about."""
        return CalendarRef(
            rep_id=self.id, email=self.email, timezone=self.timezone, grant=self.oauth_grant
        )


class OAuthState(Base):
    """A sign-in or calendar connection under way: kept until its callback, used once.

    ``state_hash`` is the SHA-256 of the ``state`` sent to the identity provider (the
    value itself is only in the browser's URL); ``browser`` the SHA-256 of the cookie that
    binds the flow to the browser that started it; ``pending`` what the callback needs
    (PKCE verifier, nonce), encrypted.
    """

    __tablename__ = "oauth_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(10))  # "signin" | "connect"
    provider: Mapped[str] = mapped_column(String(20))
    rep_id: Mapped[str | None] = mapped_column(ForeignKey("reps.id", ondelete="CASCADE"))
    browser: Mapped[str] = mapped_column(String(64))
    pending: Mapped[str] = mapped_column(EncryptedText("oauth_states.pending"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Calendar(Base):
    """Sync state of one rep's calendar: cursor, coalesced sync requests, lease."""

    __tablename__ = "calendars"

    rep_id: Mapped[str] = mapped_column(ForeignKey("reps.id", ondelete="CASCADE"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    cursor: Mapped[str | None] = mapped_column(Text)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    synced_at: Mapped[datetime | None]
    # A sync is wanted when sync_wanted_at is set; notifications arriving during a sync
    # set it again, so a burst becomes one sync in flight plus at most one after it.
    sync_wanted_at: Mapped[datetime | None] = mapped_column(index=True)
    sync_seq: Mapped[int] = mapped_column(Integer, default=0)  # +1 per sync request
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]


class WatchChannelRow(Base):
    """A live Google push channel or Graph subscription (two overlap during renewal)."""

    __tablename__ = "watch_channels"

    channel_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    rep_id: Mapped[str] = mapped_column(ForeignKey("reps.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(20))
    # Google's channel token / Graph's clientState: what a forged notification would need.
    token: Mapped[str] = mapped_column(EncryptedText("watch_channels.token"))
    resource_id: Mapped[str | None] = mapped_column(String(512))
    expires_at: Mapped[datetime]
    renew_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]


class Notification(Base):
    """Inbox of provider notifications, unique per delivery, so duplicates do nothing."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(512), unique=True)
    provider: Mapped[str] = mapped_column(String(20))
    rep_id: Mapped[str] = mapped_column(ForeignKey("reps.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(index=True)


class Event(Base):
    """A rep's calendar event as last synced (one row per instance of a series)."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("rep_id", "event_id"),
        Index("ix_events_rep_start", "rep_id", "start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rep_id: Mapped[str] = mapped_column(ForeignKey("reps.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(1024))
    title: Mapped[str] = mapped_column(Text, default="")
    start: Mapped[datetime]
    end: Mapped[datetime]
    all_day: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20))
    event_type: Mapped[str] = mapped_column(String(30), default="default")
    organizer_email: Mapped[str | None] = mapped_column(String(320))
    rep_response: Mapped[str] = mapped_column(String(20))
    attendees: Mapped[list[Any]] = mapped_column(JSON)
    recurring_event_id: Mapped[str | None] = mapped_column(String(1024))
    original_start: Mapped[datetime | None]
    created: Mapped[datetime | None]
    first_seen_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    generation: Mapped[int] = mapped_column(Integer, default=0)


class Account(Base):
    """What the CRM knows of a prospect or customer company (or free-mail person)."""

    __tablename__ = "accounts"

    domain: Mapped[str] = mapped_column(String(320), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    timezone: Mapped[str | None] = mapped_column(String(64))
    crm_id: Mapped[str | None] = mapped_column(String(255))
    stage: Mapped[str | None] = mapped_column(String(20))
    renewal_date: Mapped[str | None] = mapped_column(String(10))
    owner_email: Mapped[str | None] = mapped_column(String(320))
    contacts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    country: Mapped[str | None] = mapped_column(String(2))  # None: from the time zone
    working_hours: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # None: Mon–Fri 9–17
    calendar_timezone: Mapped[str | None] = mapped_column(String(64))  # its people's invites
    language: Mapped[str | None] = mapped_column(String(8))  # en | fr: what its people read
    updated_at: Mapped[datetime]


class Meeting(Base):
    """A prospect meeting and its next-step state; ``due_at`` is its next time trigger."""

    __tablename__ = "meetings"
    __table_args__ = (Index("ix_meetings_rep_account_end", "rep_id", "account_domain", "end"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    rep_id: Mapped[str] = mapped_column(ForeignKey("reps.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(1024))
    title: Mapped[str] = mapped_column(Text, default="")
    start: Mapped[datetime]
    end: Mapped[datetime]
    account_domain: Mapped[str] = mapped_column(String(320))
    external_attendees: Mapped[list[Any]] = mapped_column(JSON)
    state: Mapped[MeetingState] = mapped_column(StrEnumColumn(MeetingState, 20), index=True)
    follow_up: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    policy: Mapped[str] = mapped_column(String(100))
    tracked_from: Mapped[datetime]  # windows closing before this never nudge
    baseline_declined_id: Mapped[str | None] = mapped_column(String(1024))
    waived_reason: Mapped[str | None] = mapped_column(Text)
    waived_at: Mapped[datetime | None]
    snoozed_until: Mapped[datetime | None]
    last_nudge_at: Mapped[datetime | None]
    last_nudge_kind: Mapped[NudgeKind | None] = mapped_column(StrEnumColumn(NudgeKind, 30))
    last_nudge_state: Mapped[MeetingState | None] = mapped_column(StrEnumColumn(MeetingState, 20))
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class Nudge(Base):
    """A nudge produced; ``dedupe_key`` makes it once per meeting and kind.

    ``kind`` is a ``NudgeKind``, or ``account.risk_changed`` for the CRM event that goes
    through the same outbox (policies.vocabulary.RISK_CHANGED).
    """

    __tablename__ = "nudges"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(400), unique=True)
    kind: Mapped[str] = mapped_column(String(30))
    rep_id: Mapped[str | None] = mapped_column(
        ForeignKey("reps.id", ondelete="CASCADE"), index=True
    )
    meeting_id: Mapped[str | None] = mapped_column(String(36), index=True)
    account_domain: Mapped[str | None] = mapped_column(String(320))
    recipient_email: Mapped[str | None] = mapped_column(String(320))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(index=True)


class ActionResult(Base):
    """What a one-click action or an ``Idempotency-Key`` already did, and the per-meeting
    send lock (``send:<meeting id>``): the primary key makes each of them once across
    replicas. ``status`` is ``pending`` while the provider is being asked, then ``done``.
    """

    __tablename__ = "action_results"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    meeting_id: Mapped[str | None] = mapped_column(String(36), index=True)
    status: Mapped[str] = mapped_column(String(20))
    fingerprint: Mapped[str | None] = mapped_column(String(128))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    owner: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Hold(Base):
    """A tentative hold placed on the rep's calendar for a meeting's first suggested slot.

    ``event_id`` is None until the provider created it; ``remove_at`` is when it goes
    (the horizon's end); ``gone`` once removed or turned into the follow-up.
    """

    __tablename__ = "holds"

    meeting_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    rep_id: Mapped[str] = mapped_column(ForeignKey("reps.id", ondelete="CASCADE"), index=True)
    nudge_id: Mapped[str] = mapped_column(String(36))
    event_id: Mapped[str | None] = mapped_column(String(1024))
    start: Mapped[datetime]
    end: Mapped[datetime]
    remove_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20))  # wanted | placed | removing | gone
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class Delivery(Base):
    """Outbox: one row per nudge and channel, written in the nudge's transaction."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("nudge_id", "channel", "target"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    nudge_id: Mapped[str] = mapped_column(ForeignKey("nudges.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(String(2048))
    status: Mapped[DeliveryStatus] = mapped_column(
        StrEnumColumn(DeliveryStatus, 20), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]


class CrmEvent(Base):
    """The CRM's event log: one row per event (its body is the ``nudges`` row it names).

    ``seq`` orders the log for ``GET /v1/events?after=``; the body and the outbox rows
    live with the nudges (same table, same signature, same retries).
    """

    __tablename__ = "crm_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("nudges.id", ondelete="CASCADE"), unique=True)
    type: Mapped[str] = mapped_column(String(40), index=True)
    occurred_at: Mapped[datetime]


class JobLock(Base):
    """Cluster-wide singleton jobs (renewal sweep, safety net): one holder at a time."""

    __tablename__ = "job_locks"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(64))
    until: Mapped[datetime | None]


class AccountHistory(Base):
    """One recorded change of a meeting with an external account, with its state after it.

    Kept ``account_signals.retention`` long; goes with the rep (cascade) or the account.
    """

    __tablename__ = "account_history"
    __table_args__ = (Index("ix_account_history_account_at", "account_domain", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_domain: Mapped[str] = mapped_column(String(320))
    rep_id: Mapped[str] = mapped_column(ForeignKey("reps.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[str] = mapped_column(String(1024))
    series_id: Mapped[str | None] = mapped_column(String(1024))
    kind: Mapped[HistoryKind] = mapped_column(StrEnumColumn(HistoryKind, 20))
    at: Mapped[datetime] = mapped_column(index=True)
    start: Mapped[datetime]
    end: Mapped[datetime]
    old_start: Mapped[datetime | None]
    title: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str | None] = mapped_column(String(320))
    actor_side: Mapped[ActorSide | None] = mapped_column(StrEnumColumn(ActorSide, 10))
    attendees: Mapped[dict[str, Any]] = mapped_column(JSON)  # the account's people → response
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class AccountSignal(Base):
    """A signal the CRM posted (what the calendar cannot see)."""

    __tablename__ = "account_signals"
    __table_args__ = (Index("ix_account_signals_account_at", "account_domain", "occurred_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_domain: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class AccountHealthRow(Base):
    """An account's last computed health; ``due_at`` asks for a recompute (a change, daily)."""

    __tablename__ = "account_health"

    domain: Mapped[str] = mapped_column(String(320), primary_key=True)
    score: Mapped[int | None] = mapped_column(Integer)
    level: Mapped[HealthLevel | None] = mapped_column(StrEnumColumn(HealthLevel, 10), index=True)
    previous_level: Mapped[HealthLevel | None] = mapped_column(StrEnumColumn(HealthLevel, 10))
    signals: Mapped[list[Any]] = mapped_column(JSON, default=list)
    renewal_near: Mapped[bool] = mapped_column(Boolean, default=False)
    computed_at: Mapped[datetime | None]
    worsened: Mapped[int] = mapped_column(Integer, default=0)  # times the level worsened
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
