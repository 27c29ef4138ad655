"""What every /v1 endpoint shares: the API-key check, access to the runtime, the error
body, and the date-time type of response models."""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, AwareDatetime, BaseModel, PlainSerializer, WithJsonSchema

from app.errors import InvalidRequest, Unauthorized
from app.runtime import Runtime

T = TypeVar("T")

# Declares the scheme in OpenAPI (so "Authorize" / "Try it out" in /docs send the key);
# the check itself is ours, for our error bodies.
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="one of NEXTSTEP_API_KEYS, sent as `Authorization: Bearer <key>`",
)


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


async def runtime(request: Request) -> Runtime:
    """The process's runtime. ``async`` so FastAPI resolves it on the event loop: a plain
    ``def`` dependency costs every request a hand-off to AnyIO's thread pool and back."""
    return _runtime(request)


async def require_key(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Security(bearer)
) -> None:
    """``Authorization: Bearer <key>`` against NEXTSTEP_API_KEYS, in constant time (on the
    event loop, like ``runtime``: it never blocks)."""
    del credentials  # declared for OpenAPI; the header is read below, for our own errors
    keys = _runtime(request).settings.api_keys
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


# --- pages: every list answers ``{"items", "next"}`` --------------------------------------------

MAX_LIMIT = 5000


class PageQuery:
    """``limit`` and ``cursor`` of a list (``offset`` still read, for older clients)."""

    def __init__(
        self,
        limit: int = Query(default=500, ge=1, le=MAX_LIMIT, description="items per page"),
        cursor: str | None = Query(
            default=None, description="the cursor of the `next` link of the previous page"
        ),
        offset: int | None = Query(default=None, ge=0, le=DB_INT_MAX, include_in_schema=False),
    ) -> None:
        self.limit = limit
        self.offset = _decode_cursor(cursor) if cursor is not None else offset or 0

    def cut(self, request: Request, rows: Sequence[T]) -> tuple[list[T], str | None]:
        """The page's items out of ``limit + 1`` rows, and the link to the next page."""
        items = list(rows[: self.limit])
        if len(rows) <= self.limit:
            return items, None
        params = {
            k: v for k, v in request.query_params.items() if k not in ("cursor", "offset", "limit")
        }
        params["limit"] = str(self.limit)
        params["cursor"] = _encode_cursor(self.offset + self.limit)
        return items, f"{request.url.path}?{urlencode(params)}"


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o{offset}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if text.startswith("o") and text[1:].isdigit():
            return int(text[1:])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidRequest(f"cursor: {cursor[:40]!r} is not a cursor of this API (follow `next`)")


Page = Annotated[PageQuery, Depends()]
