"""Which events are prospect meetings, whose account they belong to. Pure: no I/O.

Rules (CONTRACT.md, "Prospect meetings and their state"):
- an attendee is external when their domain is not an internal domain nor a sub-domain
  of one; rooms and resources are never people;
- a prospect meeting is a non-cancelled, timed, ordinary event (not out-of-office, focus
  time or working location) with at least one external person, which the rep has not
  declined and not every external person has declined;
- the account is the external domain, except on free-mail domains, where the prospect is
  the person (the account key is the whole address);
- an event its owner marked private is busy time only (``busy_only``): no title, no
  organizer, no attendees — so never a prospect meeting, a follow-up or account history,
  and never named in a nudge.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from connectors.base import Attendee, CalendarEvent
from policies.vocabulary import PROPOSED

FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "hotmail.co.uk",
        "hotmail.fr",
        "live.com",
        "live.fr",
        "msn.com",
        "yahoo.com",
        "yahoo.fr",
        "yahoo.co.uk",
        "ymail.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "proton.me",
        "protonmail.com",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.com",
        "zoho.com",
        "yandex.com",
        "yandex.ru",
        "orange.fr",
        "wanadoo.fr",
        "free.fr",
        "sfr.fr",
        "laposte.net",
        "qq.com",
        "163.com",
        "fastmail.com",
    }
)
# Google room/resource calendars and group calendars are not people even without the flag.
RESOURCE_DOMAIN_SUFFIXES = ("resource.calendar.google.com", "group.calendar.google.com")


def busy_only(ev: CalendarEvent) -> CalendarEvent:
    """A private event as NextStep keeps it: when it is and whether the rep is busy, no more."""
    if not ev.private:
        return ev
    return replace(ev, title="", organizer_email=None, attendees=())


def domain_of(email: str) -> str:
    return email.rsplit("@", 1)[-1].strip().lower()


def is_internal(email: str, internal_domains: Iterable[str]) -> bool:
    """True when the address's domain is internal or a sub-domain of an internal one."""
    domain = domain_of(email)
    return any(domain == d or domain.endswith("." + d) for d in internal_domains)


def is_resource(attendee: Attendee) -> bool:
    domain = domain_of(attendee.email)
    return attendee.is_resource or any(
        domain == s or domain.endswith("." + s) for s in RESOURCE_DOMAIN_SUFFIXES
    )


def account_key(email: str) -> str:
    """The account an external address belongs to: its domain, or itself on free-mail."""
    email = email.strip().lower()
    domain = domain_of(email)
    return email if domain in FREE_MAIL_DOMAINS else domain


def external_people(
    attendees: Sequence[Attendee], internal_domains: Sequence[str], rep_email: str
) -> list[Attendee]:
    """Attendees who are people outside the selling company (never the rep)."""
    rep = rep_email.lower()
    return [
        a
        for a in attendees
        if a.email != rep and not is_resource(a) and not is_internal(a.email, internal_domains)
    ]


EVENT_FIELDS = (
    "event_id",
    "title",
    "start",
    "end",
    "all_day",
    "status",
    "event_type",
    "rep_response",
    "organizer_email",
    "original_start",
    "created",
    "ical_uid",
)
"""The facts a provider's event and a stored event carry under the same name."""


@dataclass(frozen=True, kw_only=True, slots=True)
class EventFacts:
    """What classification and account history need to know of a calendar event.

    Built from a provider's event (``of_event``) or from the stored copy of one (the
    meetings repository), so the rules never see either form.
    """

    event_id: str
    start: datetime
    end: datetime
    all_day: bool
    status: str
    event_type: str
    rep_response: str
    attendees: tuple[Attendee, ...]
    seen_at: datetime  # when the invite appeared (provider's created, else first sync)
    title: str = ""
    organizer_email: str | None = None
    series_id: str | None = None  # the recurring series this instance belongs to
    original_start: datetime | None = None  # an instance's start before it was moved
    created: datetime | None = None  # when the provider first recorded the event
    updated: datetime | None = None  # when the provider last changed it (not stored)
    ical_uid: str | None = None  # the same meeting on other reps' calendars

    def __post_init__(self) -> None:
        # The organiser is one of the event's attendees for every rule, listed or not (a
        # prospect's scheduling tool often leaves itself out of the attendee list).
        org = self.organizer_email
        if org and all(a.email.lower() != org.lower() for a in self.attendees):
            organiser = Attendee(email=org, response="accepted", is_organizer=True)
            object.__setattr__(self, "attendees", (*self.attendees, organiser))

    @classmethod
    def of_event(cls, ev: CalendarEvent, seen_at: datetime) -> EventFacts:
        """The facts of a provider's event; ``seen_at`` when its provider gives no ``created``."""
        return cls(
            **{name: getattr(ev, name) for name in EVENT_FIELDS},
            attendees=ev.attendees,
            seen_at=ev.created or seen_at,
            series_id=ev.recurring_event_id,
            updated=ev.updated,
        )

    @property
    def meeting_like(self) -> bool:
        """A timed, ordinary event (not all-day, out-of-office, focus time, …)."""
        return not self.all_day and self.event_type == "default"


@dataclass(frozen=True, kw_only=True, slots=True)
class ProspectMeeting:
    account: str
    external_attendees: tuple[str, ...]


def _is_timed_meeting(ev: EventFacts) -> bool:
    return ev.status != "cancelled" and not ev.all_day and ev.event_type == "default"


def classify(
    ev: EventFacts, internal_domains: Sequence[str], rep_email: str
) -> ProspectMeeting | None:
    """The prospect meeting this event is, or None: its main account (the external party
    most represented among those still coming), with every external attendee."""
    if not _is_timed_meeting(ev) or ev.rep_response == "declined":
        return None
    people = external_people(ev.attendees, internal_domains, rep_email)
    present = [a for a in people if a.response != "declined"]
    if not present:
        return None
    counts = Counter(account_key(a.email) for a in present)
    best = max(counts.values())
    account = next(account_key(a.email) for a in present if counts[account_key(a.email)] == best)
    return ProspectMeeting(
        account=account, external_attendees=tuple(dict.fromkeys(a.email for a in people))
    )


def classify_accounts(
    ev: EventFacts, internal_domains: Sequence[str], rep_email: str
) -> list[ProspectMeeting]:
    """The prospect meeting this event is for each external account with someone still
    coming (CONTRACT.md: a meeting with several accounts is tracked for each), most
    represented first (ties: first listed); each with that account's attendees."""
    if not _is_timed_meeting(ev) or ev.rep_response == "declined":
        return []
    people = external_people(ev.attendees, internal_domains, rep_email)
    present = [a for a in people if a.response != "declined"]
    counts = Counter(account_key(a.email) for a in present)
    order = list(dict.fromkeys(account_key(a.email) for a in present))
    order.sort(key=lambda account: -counts[account])  # stable: ties keep their order
    return [
        ProspectMeeting(
            account=account,
            external_attendees=tuple(
                dict.fromkeys(a.email for a in people if account_key(a.email) == account)
            ),
        )
        for account in order
    ]


def follow_up_responses(
    ev: EventFacts, account: str, internal_domains: Sequence[str], rep_email: str
) -> dict[str, str] | None:
    """Responses of the account's people to ``ev``, or None when ``ev`` cannot be a
    follow-up of that account (cancelled, all-day, no one of the account invited)."""
    if not _is_timed_meeting(ev):
        return None
    responses: dict[str, str] = {
        a.email: PROPOSED if a.proposed else a.response
        for a in external_people(ev.attendees, internal_domains, rep_email)
        if account_key(a.email) == account
    }
    return responses or None


def follow_up_proposals(
    ev: EventFacts, account: str, internal_domains: Sequence[str], rep_email: str
) -> dict[str, tuple[datetime, datetime]]:
    """New times the account's people proposed for ``ev`` (Outlook counter-proposals)."""
    return {
        a.email: (a.proposed_start, a.proposed_end)
        for a in external_people(ev.attendees, internal_domains, rep_email)
        if account_key(a.email) == account
        and a.proposed_start is not None
        and a.proposed_end is not None
    }


def accounts_of(ev: EventFacts, internal_domains: Sequence[str], rep_email: str) -> set[str]:
    """Every account with a person on the event (cancelled or not)."""
    return {
        account_key(a.email) for a in external_people(ev.attendees, internal_domains, rep_email)
    }
