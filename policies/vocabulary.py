"""The words the service speaks: meeting states, nudge kinds, and the other closed sets.

One ``StrEnum`` each, used everywhere instead of loose strings and tuples. A member *is*
its string (``MeetingState.SECURED == "secured"``), so JSON, SQL and comparisons with
stored text are unchanged. Pure: no I/O.
"""

from __future__ import annotations

from enum import StrEnum


class MeetingState(StrEnum):
    """Where a prospect meeting stands (CONTRACT.md, "Prospect meetings and their state")."""

    UPCOMING = "upcoming"  # it has not ended yet
    NEEDS_NEXT_STEP = "needs_next_step"  # it ended and no live follow-up exists
    INVITED = "invited"  # a follow-up exists, nobody of the account accepted it yet
    SECURED = "secured"  # someone of the account accepted the follow-up
    WAIVED = "waived"  # someone said no follow-up is wanted


#: States in which the rep still owes a next step (nudges and escalations happen here).
OPEN_STATES = frozenset({MeetingState.NEEDS_NEXT_STEP, MeetingState.INVITED})


class NudgeKind(StrEnum):
    """What a nudge is about (CONTRACT.md, "Nudges" and "Account health")."""

    NO_NEXT_STEP = "no_next_step"  # no follow-up within invite_within
    NOT_ACCEPTED = "not_accepted"  # follow-up not accepted within accept_within
    FOLLOW_UP_DECLINED = "follow_up_declined"  # every external attendee declined it
    ESCALATION = "escalation"  # to the manager: a nudge went unanswered
    ACCOUNT_AT_RISK = "account_at_risk"  # to the account's owner: its health worsened
    CONNECTION_LOST = "connection_lost"  # to the manager (else the admin): a rep's calendar


#: The kinds a prospect meeting's own windows produce (policies/state.py decides them).
MEETING_NUDGE_KINDS = (
    NudgeKind.NO_NEXT_STEP,
    NudgeKind.NOT_ACCEPTED,
    NudgeKind.FOLLOW_UP_DECLINED,
    NudgeKind.ESCALATION,
)

#: The CRM event an account's level change sends through the outbox (not a nudge).
RISK_CHANGED = "account.risk_changed"
#: A meeting's state changed (CONTRACT.md, "Events for the CRM").
MEETING_STATE_CHANGED = "meeting.state_changed"
#: A rep's calendar connection status changed.
REP_STATUS_CHANGED = "rep.status_changed"
#: Every CRM event type: stored and sent like nudges, listed by ``GET /v1/events``.
EVENT_TYPES = (MEETING_STATE_CHANGED, REP_STATUS_CHANGED, RISK_CHANGED)


class WindowName(StrEnum):
    """The policy windows a nudge can say passed."""

    INVITE_WITHIN = "invite_within"
    ACCEPT_WITHIN = "accept_within"
    ESCALATE_AFTER = "escalate_after"


class RepStatus(StrEnum):
    """How a rep's calendar connection is doing."""

    ACTIVE = "active"
    SYNCING = "syncing"
    AUTH_FAILED = "auth_failed"
    SYNC_ERROR = "sync_error"
    PENDING_CONNECTION = "pending_connection"  # "auth": "user", calendar not connected yet


class DeliveryStatus(StrEnum):
    """Where one outbox row stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class HealthLevel(StrEnum):
    """An account's health level, best first."""

    HEALTHY = "healthy"
    WATCH = "watch"
    AT_RISK = "at_risk"


class HistoryKind(StrEnum):
    """What one account-history entry records about a meeting with the account."""

    SEEN = "seen"  # first sight
    MOVED = "moved"  # start from → to
    ATTENDEES = "attendees"  # people added or removed
    RESPONSE = "response"  # someone of the account answered
    CANCELLED = "cancelled"


class ActorSide(StrEnum):
    """Who made a change to a meeting: the account, the selling company, or a third party."""

    ACCOUNT = "account"
    INTERNAL = "internal"
    OTHER = "other"


class ActionKind(StrEnum):
    """The one-click actions a nudge with slots carries (its ``actions`` list)."""

    SEND_INVITE = "send_invite"
    SNOOZE = "snooze"
    WAIVE = "waive"
