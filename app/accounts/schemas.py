"""Bodies of /v1/accounts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.reps.schemas import check_email
from policies.zones import check_zone


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str
    name: str | None = None
    title: str | None = None
    role: Literal["decision_maker", "champion", "influencer", "user"]

    _email = field_validator("email")(check_email)


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    timezone: str | None = None
    crm_id: str | None = None
    stage: Literal["prospect", "customer"] | None = None
    renewal_date: date | None = None
    owner_email: str | None = None
    contacts: list[Contact] | None = None

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
    occurred_at: datetime
    note: str | None = Field(default=None, max_length=2000)

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a UTC offset (e.g. 2026-11-23T10:00:00Z)")
        return value
