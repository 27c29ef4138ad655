"""Request and response bodies of /v1/reps."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from policies.zones import check_zone

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def check_email(value: str) -> str:
    value = value.strip().lower()
    if not EMAIL.match(value):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


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

    _email = field_validator("email")(check_email)
    _timezone = field_validator("timezone")(check_zone)

    @field_validator("manager_email")
    @classmethod
    def _manager(cls, value: str | None) -> str | None:
        return None if value is None else check_email(value)


class RepOut(BaseModel):
    id: str
    email: str
    provider: str
    timezone: str
    locale: str
    working_hours: dict[str, Any]
    manager_email: str | None
    policy: str
    status: str = Field(description="active | syncing | auth_failed | sync_error")
    status_detail: str | None
    created_at: datetime
    calendar: dict[str, Any]


class RepList(BaseModel):
    items: list[RepOut]
