"""Bodies of /v1/accounts."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from app.reps.schemas import check_email


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
