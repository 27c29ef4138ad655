"""Injected failures of Graph calls, with the bodies ``concepts/throttling.md`` shows.

Queued by ``GraphEmulator.inject_fault`` in a ``FaultQueue`` keyed by the names in
``calls`` (``"GET calendarView.delta"``, ...). A call takes its fault before anything
else; ``after_processing`` lets the call take effect and loses only its response.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from starlette.responses import JSONResponse, Response

from tests.emulators.microsoft.errors import error_response


@dataclass
class Fault:
    status: int
    retry_after: str | None
    after_processing: bool = False  # do the work, then fail: a lost response


def fault_response(fault: Fault, now: datetime) -> Response:
    """429 with the throttling body, 502 as an HTML gateway page, else Graph error JSON."""
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    if fault.status == 429:
        # Verbatim shape of concepts/throttling.md.
        body = {
            "error": {
                "code": "TooManyRequests",
                "innerError": {
                    "code": "429",
                    "date": now.strftime("%Y-%m-%dT%H:%M:%S"),
                    "message": "Please retry after",
                    "request-id": str(uuid.uuid4()),
                    "status": "429",
                },
                "message": "Please retry again later.",
            }
        }
        return JSONResponse(body, status_code=429, headers=headers)
    if fault.status == 502:
        return Response(
            "<html><body>502 Bad Gateway</body></html>",
            502,
            headers=headers,
            media_type="text/html",
        )
    codes = {500: "generalException", 503: "serviceNotAvailable", 504: "UnknownError"}
    return error_response(
        fault.status, codes.get(fault.status, "UnknownError"), "Service unavailable.", now, headers
    )
