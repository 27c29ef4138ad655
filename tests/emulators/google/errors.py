"""Google's error bodies, as the "Handle API errors" guide and the OAuth endpoint show them."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

# (status, reason) -> (domain, message, extra fields of errors[0])
KNOWN: dict[tuple[int, str], tuple[str, str, dict[str, str]]] = {
    (400, "badRequest"): ("global", "Bad Request", {}),
    (400, "invalid"): ("global", "Invalid Value", {}),
    (400, "required"): ("global", "Required", {}),
    (400, "timeRangeEmpty"): ("calendar", "The specified time range is empty.", {}),
    (400, "channelIdNotUnique"): ("global", "Channel id not unique", {}),
    (401, "authError"): (
        "global",
        "Invalid Credentials",
        {"locationType": "header", "location": "Authorization"},
    ),
    (403, "forbiddenForNonOrganizer"): (
        "calendar",
        "Shared properties can only be changed by the organizer of the event.",
        {},
    ),
    (403, "quotaExceeded"): ("usageLimits", "Calendar usage limits exceeded.", {}),
    (403, "rateLimitExceeded"): ("usageLimits", "Rate Limit Exceeded", {}),
    (403, "userRateLimitExceeded"): ("usageLimits", "User Rate Limit Exceeded", {}),
    (403, "insufficientPermissions"): ("global", "Insufficient Permission", {}),
    (404, "notFound"): ("global", "Not Found", {}),
    (409, "duplicate"): ("global", "The requested identifier already exists.", {}),
    (410, "fullSyncRequired"): (
        "calendar",
        "Sync token is no longer valid, a full sync is required.",
        {"locationType": "parameter", "location": "syncToken"},
    ),
    (410, "updatedMinTooLongAgo"): (
        "calendar",
        "The requested minimum modification time lies too far in the past.",
        {"locationType": "parameter", "location": "updatedMin"},
    ),
    (410, "deleted"): ("global", "Resource has been deleted", {}),
    (412, "conditionNotMet"): (
        "global",
        "Precondition Failed",
        {"locationType": "header", "location": "If-Match"},
    ),
    (429, "rateLimitExceeded"): ("usageLimits", "Rate Limit Exceeded", {}),
    (500, "backendError"): ("global", "Backend Error", {}),
    (503, "backendError"): ("global", "Backend Error", {}),
}

DEFAULT_REASON = {
    400: "badRequest",
    401: "authError",
    403: "rateLimitExceeded",
    404: "notFound",
    409: "duplicate",
    410: "fullSyncRequired",
    412: "conditionNotMet",
    429: "rateLimitExceeded",
    500: "backendError",
    502: "backendError",
    503: "backendError",
}


def error_body(
    status: int, reason: str | None = None, message: str | None = None, **extra: str
) -> dict[str, Any]:
    """``{"error": {"errors": [...], "code": ..., "message": ...}}`` as Google sends it."""
    reason = reason or DEFAULT_REASON.get(status, "backendError")
    domain, default_message, default_extra = KNOWN.get((status, reason), ("global", reason, {}))
    message = message or default_message
    first: dict[str, Any] = {"domain": domain, "reason": reason, "message": message}
    first.update(default_extra)
    first.update(extra)
    return {"error": {"errors": [first], "code": status, "message": message}}


def error_response(
    status: int,
    reason: str | None = None,
    message: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    **extra: str,
) -> JSONResponse:
    """A JSONResponse carrying ``error_body``; 401s get Google's WWW-Authenticate."""
    headers = dict(headers or {})
    if status == 401:
        headers.setdefault(
            "WWW-Authenticate", 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
        )
    return JSONResponse(
        error_body(status, reason, message, **extra), status_code=status, headers=headers
    )


def insufficient_scopes(method: str) -> JSONResponse:
    """The 403 Google returns when the token lacks every scope the method accepts."""
    body = {
        "error": {
            "code": 403,
            "message": "Request had insufficient authentication scopes.",
            "errors": [
                {
                    "message": "Insufficient Permission",
                    "domain": "global",
                    "reason": "insufficientPermissions",
                }
            ],
            "status": "PERMISSION_DENIED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                    "domain": "googleapis.com",
                    "metadata": {"service": "calendar-json.googleapis.com", "method": method},
                }
            ],
        }
    }
    return JSONResponse(body, status_code=403)


def oauth_error(status: int, error: str, description: str) -> JSONResponse:
    """The token endpoint's ``{"error": ..., "error_description": ...}``."""
    return JSONResponse({"error": error, "error_description": description}, status_code=status)
