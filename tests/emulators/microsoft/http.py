"""What every Graph endpoint shares: request parsing and the mailbox access check."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from tests.emulators.microsoft.auth import App
from tests.emulators.microsoft.errors import GraphHTTPError
from tests.emulators.microsoft.state import GraphState, Mailbox

READ_ROLES = {"Calendars.ReadBasic", "Calendars.Read", "Calendars.ReadWrite"}
SUBSCRIBE_ROLES = {"Calendars.Read", "Calendars.ReadWrite"}
WRITE_ROLES = {"Calendars.ReadWrite"}
MAILBOX_SETTINGS_ROLES = {"MailboxSettings.Read", "MailboxSettings.ReadWrite"}
RAOP_MESSAGE = (
    "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly "
    "AccessPolicy settings."
)


async def read_json(request: Request) -> dict[str, Any]:
    """The JSON object a request carries (an empty body is ``{}``); 400 BadRequest else."""
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as err:
        raise GraphHTTPError(400, "BadRequest", "Unable to read JSON request payload.") from err
    if not isinstance(body, dict):
        raise GraphHTTPError(400, "BadRequest", "Unable to read JSON request payload.")
    return body


def prefer(request: Request) -> dict[str, str]:
    """The ``Prefer`` header's preferences (``odata.maxpagesize``, ``outlook.timezone``)."""
    prefs: dict[str, str] = {}
    for header in request.headers.getlist("prefer"):
        for part in header.split(","):
            key, _, value = part.strip().partition("=")
            if key:
                prefs[key.strip().lower()] = value.strip().strip('"')
    return prefs


def mailbox_for(state: GraphState, user: str, app: App, roles: set[str]) -> Mailbox:
    """The mailbox ``user`` (UPN or object id) if ``app`` may use it with ``roles``."""
    key = user.lower()
    mb = state.mailboxes.get(key) or next(
        (m for m in state.mailboxes.values() if m.id == key), None
    )
    if not (app.roles & roles):
        raise GraphHTTPError(
            403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
        )
    if mb is None:
        raise GraphHTTPError(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")
    if not mb.rest_enabled:
        raise GraphHTTPError(
            404,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        )
    if not mb.allowed:
        raise GraphHTTPError(403, "ErrorAccessDenied", RAOP_MESSAGE)
    if app.user is not None and mb.email.lower() != app.user:
        raise GraphHTTPError(
            403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
        )
    return mb
