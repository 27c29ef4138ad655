"""What every /v1 endpoint shares: the API-key check and access to the runtime."""

from __future__ import annotations

import hmac

from fastapi import Depends, Request

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
