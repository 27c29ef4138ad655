"""Graph's error answers: ``GraphHTTPError`` raised by handlers, and the JSON it becomes.

The per-call wrapper in ``handlers.py`` turns the exception into Graph's
``{"error": {"code", "message", "innerError"}}`` (``concepts/errors.md``).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from starlette.responses import JSONResponse, Response


class GraphHTTPError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_response(
    status: int, code: str, message: str, now: datetime, headers: dict | None = None
) -> Response:
    """Graph's error JSON with a fresh request id (also in the ``request-id`` header)."""
    rid = str(uuid.uuid4())
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": now.strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": rid,
                "client-request-id": rid,
            },
        }
    }
    return JSONResponse(body, status_code=status, headers={"request-id": rid, **(headers or {})})
