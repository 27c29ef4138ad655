"""What every /v1 endpoint shares: the API-key check, access to the runtime, the error
body, and the date-time type of response models."""

from __future__ import annotations

import hmac
import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import BaseModel, PlainSerializer, WithJsonSchema

from app.errors import Unauthorized
from app.runtime import Runtime


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


async def runtime(request: Request) -> Runtime:
    """The process's runtime. ``async`` so FastAPI resolves it on the event loop: a plain
    ``def`` dependency costs every request a hand-off to AnyIO's thread pool and back."""
    return _runtime(request)


async def require_key(request: Request) -> None:
    """``Authorization: Bearer <key>`` against NEXTSTEP_API_KEYS, in constant time (on the
    event loop, like ``runtime``: it never blocks)."""
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
