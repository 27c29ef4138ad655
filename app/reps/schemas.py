"""Request and response bodies of /v1/reps."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.api import check_email
from policies.business import check_country
from policies.vocabulary import RepStatus
from policies.zones import check_zone


class WorkingHoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: list[str] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"])
    start: str = "09:00"
    end: str = "18:00"


class RepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str
    provider: str
    timezone: str
    locale: Literal["en", "fr"] = "en"
    working_hours: WorkingHoursIn | None = None
    manager_email: str | None = None
    policy: str | None = Field(default=None, description="policy name; the file's first if unset")
    country: str | None = Field(
        default=None, description="ISO 3166-1 alpha-2 (holidays); absent: the zone's country"
    )
    auth: Literal["admin", "user"] = Field(
        default="admin",
        description='"admin": the deployment\'s delegation reaches the calendar; "user": the '
        "rep connects it (answer's connect_url), status pending_connection until then",
    )

    _email = field_validator("email")(check_email)
    _timezone = field_validator("timezone")(check_zone)

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return None if value is None else check_country(value, field="")

    @field_validator("manager_email")
    @classmethod
    def _manager(cls, value: str | None) -> str | None:
        return None if value is None else check_email(value)


FIXED_FIELDS = ("email", "provider")


class RepPatch(BaseModel):
    """``PATCH /v1/reps/{id}``: any field given at registration but ``email`` and
    ``provider``; only the fields given change (``null`` resets ``manager_email``,
    ``working_hours``, ``policy`` and ``country`` to their defaults)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"manager_email": "new.boss@seller.io", "timezone": "America/New_York"}]
        },
    )

    email: str | None = Field(default=None, description="refused: cannot be changed")
    provider: str | None = Field(default=None, description="refused: cannot be changed")
    timezone: str | None = None
    locale: Literal["en", "fr"] | None = None
    working_hours: WorkingHoursIn | None = None
    manager_email: str | None = None
    policy: str | None = None
    country: str | None = Field(
        default=None, description="ISO 3166-1 alpha-2; null: the country of the time zone"
    )

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return None if value is None else check_country(value, field="")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else check_zone(value)

    @field_validator("manager_email")
    @classmethod
    def _manager(cls, value: str | None) -> str | None:
        return None if value is None else check_email(value)


class WatchOut(BaseModel):
    """A live push channel (Google) or subscription (Graph) on the rep's calendar."""

    channel_id: str
    expires_at: datetime


class CalendarOut(BaseModel):
    """How the rep's calendar sync is doing."""

    synced_at: datetime | None
    sync_pending: bool
    last_error: str | None
    watch: list[WatchOut]


class RepOut(BaseModel):
    """A registered rep (times are UTC, written with ``Z``)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b7e3c5a-2f4d-4a61-8c9e-1d2f3a4b5c6d",
                    "email": "anne@seller.io",
                    "provider": "google",
                    "timezone": "Europe/Paris",
                    "locale": "fr",
                    "working_hours": {
                        "days": ["mon", "tue", "wed", "thu", "fri"],
                        "start": "09:00",
                        "end": "18:00",
                    },
                    "manager_email": "boss@seller.io",
                    "policy": "prospect-default",
                    "status": "active",
                    "status_detail": None,
                    "created_at": "2026-11-23T08:00:00Z",
                    "calendar": {
                        "synced_at": "2026-11-23T08:00:01Z",
                        "sync_pending": False,
                        "last_error": None,
                        "watch": [{"channel_id": "c-5f2e9a", "expires_at": "2026-11-30T08:00:00Z"}],
                    },
                }
            ]
        }
    )
    id: str
    email: str
    provider: str
    timezone: str
    locale: str
    working_hours: dict[str, Any] = Field(description="days, start and end, in its time zone")
    manager_email: str | None
    policy: str
    country: str | None = Field(
        default=None, description="the country whose holidays it keeps (given or from its zone)"
    )
    status: RepStatus
    status_detail: str | None
    created_at: datetime
    calendar: CalendarOut
    auth: str = "admin"
    connect_url: str | None = Field(
        default=None,
        description='"auth": "user": where the rep connects (or reconnects) the calendar',
    )


class RepList(BaseModel):
    """``GET /v1/reps``: reps in the order they registered; ``next`` is the next page's URL
    (null on the last page)."""

    items: list[RepOut]
    next: str | None = Field(default=None, examples=["/v1/reps?limit=500&cursor=bzUwMA"])
