"""What every /v1 endpoint shares: the API-key check, access to the runtime, the error
body, and the date-time type of response models."""

from __future__ import annotations

import hmac
import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from pydantic import AfterValidator, AwareDatetime, BaseModel, PlainSerializer, WithJsonSchema

from app.errors import Unauthorized
from app.runtime import Runtime


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def require_key(request: Request) -> None:
    """``Authorization: Bearer <key>`` against NEXTSTEP_API_KEYS, in constant time."""
    keys = runtime(request).settings.api_keys
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if not keys:
        raise Unauthorized("no API keys are configured (NEXTSTEP_API_KEYS): /v1 refuses all calls")
    if scheme.lower() != "bearer" or not given.strip():
        raise Unauthorized("missing 'Authorization: Bearer <key>' header")
    candidate = given.strip().encode()
    matched = False
    for key in keys:  # compare with every key so timing does not tell which one is close
        matched |= hmac.compare_digest(candidate, key.encode())
    if not matched:
        raise Unauthorized("invalid API key")


Authorized = Depends(require_key)

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def check_email(value: str) -> str:
    """A body's e-mail address, trimmed and lower-cased; ValueError when it is none."""
    value = value.strip().lower()
    if not EMAIL.match(value):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


# --- bounds at the edge -------------------------------------------------------------------------
# Every date a caller sends lies in these years, in its own offset and in UTC: windows and
# horizons are added to it, and both databases store it, without overflowing. Every integer
# fits the 32-bit INTEGER of both databases.
FIRST_YEAR, LAST_YEAR = 1900, 2200
DB_INT_MAX = 2**31 - 1
_RANGE = f"must lie between {FIRST_YEAR}-01-01 and {LAST_YEAR}-12-31"


def check_date(value: date) -> date:
    """A body's calendar date, within FIRST_YEAR..LAST_YEAR."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(_RANGE)
    return value


def check_instant(value: datetime) -> datetime:
    """An aware date-time within FIRST_YEAR..LAST_YEAR, both as written and in UTC."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+14:00 is before year 1 in UTC
        raise ValueError(_RANGE) from None
    if not (FIRST_YEAR <= value.year <= LAST_YEAR and FIRST_YEAR <= utc.year <= LAST_YEAR):
        raise ValueError(_RANGE)
    return value


Instant = Annotated[AwareDatetime, AfterValidator(check_instant)]
"""An aware date-time a caller sends (with an offset), within the years the service handles."""

Day = Annotated[date, AfterValidator(check_date)]
"""A calendar date a caller sends, within the years the service handles."""

Limit = Annotated[int, Query(ge=1, le=5000, description="at most this many items")]
Offset = Annotated[int, Query(ge=0, le=DB_INT_MAX, description="skip this many items")]


IsoDateTime = Annotated[
    datetime,
    PlainSerializer(lambda value: value.isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""An aware datetime in a response, written ``2026-11-23T10:00:00+00:00`` (``isoformat``)."""


class ErrorOut(BaseModel):
    """Every 4xx: what is wrong, in one sentence that names the field or id."""

    detail: str


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for the error statuses an endpoint answers."""
    return {status: {"model": ErrorOut} for status in statuses}


def links(status: int, **targets: tuple[str, str, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``links`` of a success answer: ``name=(path, method, parameter expression)``.

    They say where an id in an answer can be used next (schemathesis's stateful run follows
    them); the parameter is the path's only one, read with a runtime expression such as
    ``$response.body#/id``.
    """
    out: dict[str, Any] = {}
    for name, (path, method, expression) in targets.items():
        parameter = path[path.index("{") + 1 : path.index("}")]
        pointer = path.replace("~", "~0").replace("/", "~1")
        out[name] = {
            "operationRef": f"#/paths/{pointer}/{method}",
            "parameters": {parameter: expression},
        }
    return {status: {"description": "Successful Response", "links": out}}
