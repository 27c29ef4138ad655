"""Injected failures of Google API calls: Google's error JSON, or a body given verbatim.

Queued by ``GoogleEmulator.fail_next`` in a ``FaultQueue`` keyed by method name
(``"events.list"``, ...); a call takes its fault after authentication, so a fault never
hides a 401/403 the call would get anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import Response

from tests.emulators.google.errors import error_response


@dataclass
class Fault:
    status: int
    reason: str | None
    body: str | None  # sent verbatim as JSON instead of the generated error body
    retry_after: float | None


def fault_response(fault: Fault) -> Response:
    """The answer a call gets instead of its result."""
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
    if fault.body is not None:
        return Response(
            fault.body, status_code=fault.status, media_type="application/json", headers=headers
        )
    return error_response(fault.status, fault.reason, headers=headers)
