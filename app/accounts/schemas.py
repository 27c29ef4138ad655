"""Request and response bodies of /v1/accounts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.api import Day, Instant, IsoDateTime, check_email
from policies.business import check_country
from policies.vocabulary import HealthLevel
from policies.zones import check_zone


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str
    name: str | None = None
    title: str | None = None
    role: Literal["decision_maker", "champion", "influencer", "user"]
    language: Literal["en", "fr"] | None = Field(
        default=None, description="what this person reads; absent: the account's language"
    )

    _email = field_validator("email")(check_email)


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    timezone: str | None = None
    crm_id: str | None = None
    stage: Literal["prospect", "customer"] | None = None
    renewal_date: Day | None = None
    owner_email: str | None = None
    contacts: list[Contact] | None = None
    country: str | None = Field(
        default=None, description="ISO 3166-1 alpha-2 (holidays); absent: the zone's country"
    )
    working_hours: dict[str, Any] | None = Field(
        default=None, description='{"days": [...], "start", "end"}; default Mon–Fri 09:00–17:00'
    )

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return None if value is None else check_country(value, field="")

    language: Literal["en", "fr"] | None = Field(
        default=None,
        description="the language the account's people read (the candid at-risk note is "
        "written in it); absent: US English",
    )

    @field_validator("owner_email")
    @classmethod
    def _owner(cls, value: str | None) -> str | None:
        return None if value is None else check_email(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return None if value is None else check_zone(value)


class SignalIn(BaseModel):
    """A signal the CRM sees and the calendar cannot (e.g. ``small_talk_gone``)."""

    model_config = ConfigDict(extra="forbid")
    kind: str = Field(pattern=r"^[a-z][a-z0-9_.-]{0,63}$")
    occurred_at: Instant
    note: str | None = Field(default=None, max_length=2000)


# --- responses -------------------------------------------------------------------------------


class ContactOut(BaseModel):
    """A contact as the CRM gave it (fields it left out stay out)."""

    model_config = ConfigDict(extra="allow")
    email: str
    name: str | None = None
    title: str | None = None
    role: str = Field(description="decision_maker | champion | influencer | user")


class AccountOut(BaseModel):
    """What the CRM told us of an account."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "domain": "acme.com",
                    "name": "Acme Corp",
                    "timezone": "America/New_York",
                    "crm_id": "0011",
                    "stage": "customer",
                    "renewal_date": "2027-06-30",
                    "owner_email": "anne@seller.io",
                    "contacts": [
                        {"email": "dana@acme.com", "name": "Dana", "role": "decision_maker"}
                    ],
                    "language": "en",
                    "updated_at": "2026-11-23T08:00:00Z",
                }
            ]
        }
    )
    domain: str = Field(description="the account key: a domain, or an address on free mail")
    name: str | None
    timezone: str | None = Field(description="the zone its slots are read in")
    timezone_source: str | None = Field(
        default=None, description="crm | calendar (its people's own invites) | rep"
    )
    country: str | None = Field(default=None, description="whose holidays it keeps")
    working_hours: dict[str, Any] | None = Field(
        default=None, description="days, start and end, in its time zone"
    )
    crm_id: str | None
    stage: str | None = Field(description="prospect | customer")
    renewal_date: date | None
    owner_email: str | None
    contacts: list[ContactOut]
    language: str | None = Field(default=None, description="en | fr; null: US English")
    updated_at: datetime = Field(description="UTC, written with Z")


class SignalOut(BaseModel):
    """A CRM signal as stored."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1,
                    "domain": "acme.com",
                    "kind": "small_talk_gone",
                    "occurred_at": "2026-11-20T16:00:00+00:00",
                    "note": "calls are all business now",
                }
            ]
        }
    )
    id: int
    domain: str
    kind: str
    occurred_at: IsoDateTime
    note: str | None


class HealthSignal(BaseModel):
    """One silent signal, with what it is based on."""

    model_config = ConfigDict(extra="allow")
    kind: str = Field(description="a calendar signal kind, or the CRM's own kind")
    severity: str = Field(description="low | medium | high")
    since: str = Field(description="ISO 8601 date or date-time it has been going on since")
    evidence: list[str] = Field(description="event ids or dates")
    explanation: str
    # Extensions: the weight of the evidence, and what it took off the score.
    severity_value: int | float
    points: int | float
    details: dict[str, Any]


class HealthOut(BaseModel):
    """An account's health: 100 is healthy; the signals say what took points off."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "domain": "acme.com",
                    "score": 62,
                    "level": "watch",
                    "signals": [
                        {
                            "kind": "meetings_postponed",
                            "severity": "medium",
                            "since": "2026-10-12T14:00:00+00:00",
                            "evidence": ["evt-41", "evt-44"],
                            "explanation": "3 meetings moved later in the last 90 days.",
                            "severity_value": 0.6,
                            "points": 15.0,
                            "details": {"postponed": 3},
                        }
                    ],
                    "computed_at": "2026-11-23T08:00:00+00:00",
                    "name": "Acme Corp",
                    "stage": "customer",
                    "owner_email": "anne@seller.io",
                    "renewal_date": "2027-06-30",
                    "renewal_near": False,
                    "previous_level": "healthy",
                }
            ]
        }
    )
    domain: str
    score: int = Field(ge=0, le=100)
    level: HealthLevel
    signals: list[HealthSignal]
    computed_at: IsoDateTime
    # Extensions.
    name: str | None
    stage: str | None
    owner_email: str | None
    renewal_date: date | None
    renewal_near: bool
    previous_level: HealthLevel | None


class HealthList(BaseModel):
    """``GET /v1/accounts``: accounts' health, by domain; ``next`` is the next page's URL
    (null on the last page)."""

    items: list[HealthOut]
    next: str | None = Field(default=None, examples=["/v1/accounts?limit=500&cursor=bzUwMA"])
