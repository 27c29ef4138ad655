"""Google's OAuth 2.0 side: the JWT-bearer token endpoint and the bearer/scope checks.

Service accounts are registered with their public key; domain-wide delegation grants a
client id a set of scopes (the Admin console entry). ``POST /token`` checks the signed
assertion as "Using OAuth 2.0 for Server to Server Applications" describes and issues
opaque ``ya29.`` tokens bound to the subject and scopes; ``refusal`` answers an API call
whose token is unknown, expired or lacks every scope the method accepts.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.emulators.common.http import read_form
from tests.emulators.google.errors import error_response, insufficient_scopes, oauth_error

GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE_PREFIX = "https://www.googleapis.com/auth/"

# Scopes each method accepts, from the Calendar v3 discovery document.
_EVENT_READ = {
    "calendar", "calendar.readonly", "calendar.events", "calendar.events.readonly",
    "calendar.events.owned", "calendar.events.owned.readonly", "calendar.app.created",
    "calendar.events.freebusy", "calendar.events.public.readonly",
}  # fmt: skip
METHOD_SCOPES: dict[str, set[str]] = {
    "events.list": _EVENT_READ,
    "events.get": _EVENT_READ,
    "events.watch": _EVENT_READ,
    "events.insert": {
        "calendar",
        "calendar.events",
        "calendar.events.owned",
        "calendar.app.created",
    },
    "events.patch": {
        "calendar",
        "calendar.events",
        "calendar.events.owned",
        "calendar.app.created",
    },
    "events.delete": {
        "calendar",
        "calendar.events",
        "calendar.events.owned",
        "calendar.app.created",
    },
    "channels.stop": _EVENT_READ
    | {"calendar.settings.readonly", "calendar.acls", "calendar.calendarlist"},
    "freebusy.query": {
        "calendar",
        "calendar.readonly",
        "calendar.freebusy",
        "calendar.events.freebusy",
    },
}
RPC_NAMES = {
    "events.list": "calendar.v3.Events.List",
    "events.get": "calendar.v3.Events.Get",
    "events.watch": "calendar.v3.Events.Watch",
    "events.insert": "calendar.v3.Events.Insert",
    "events.patch": "calendar.v3.Events.Patch",
    "events.delete": "calendar.v3.Events.Delete",
    "channels.stop": "calendar.v3.Channels.Stop",
    "freebusy.query": "calendar.v3.Freebusy.Query",
}
_SHORT_LIVED = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."
)


class ServiceAccounts:
    """Registered service-account keys, delegation grants and the tokens issued."""

    def __init__(
        self, lock: threading.RLock, calls: Counter[str], is_user: Callable[[str], bool]
    ) -> None:
        self._lock = lock
        self._calls = calls
        self._is_user = is_user
        self.service_accounts: dict[str, dict[str, Any]] = {}  # client_email -> info
        self.delegations: dict[str, set[str]] = {}  # client_id -> scopes granted
        self.access_tokens: dict[str, dict[str, Any]] = {}
        self.token_lifetime = 3600
        self.token_uri = ""  # the emulator's own token URL, once served

    # --- admin -----------------------------------------------------------------------

    def register_service_account(
        self, *, client_email: str, client_id: str, private_key_id: str, public_key_pem: bytes
    ) -> None:
        """Know a service account's public key (what Google holds for a created key)."""
        with self._lock:
            self.service_accounts[client_email] = {
                "client_id": client_id,
                "private_key_id": private_key_id,
                "public_key": public_key_pem,
            }

    def authorize_client(self, client_id: str, scopes: Iterable[str]) -> None:
        """Admin console: Security > API controls > Domain-wide delegation > Add new."""
        with self._lock:
            self.delegations[client_id] = set(scopes)

    def revoke_client(self, client_id: str) -> None:
        """Remove the delegation; new token requests get ``unauthorized_client``."""
        with self._lock:
            self.delegations.pop(client_id, None)

    def revoke_tokens(self, subject: str | None = None) -> None:
        """Invalidate issued access tokens (all, or a subject's): next API call → 401."""
        with self._lock:
            for token in [
                t for t, info in self.access_tokens.items() if subject in (None, info["subject"])
            ]:
                del self.access_tokens[token]

    # --- API calls -------------------------------------------------------------------

    def lookup(self, request: Request) -> dict[str, Any] | None:
        """What the call's ``Authorization: Bearer`` token was issued for (None: unknown)."""
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else None
        return self.access_tokens.get(token or "")

    @staticmethod
    def refusal(info: dict[str, Any] | None, method: str) -> Response | None:
        """401 for a missing or expired token, 403 when it lacks the method's scopes."""
        if info is None or info["expires"] < time.time():
            return error_response(401, "authError")
        if not info["scopes"] & METHOD_SCOPES[method]:
            return insufficient_scopes(RPC_NAMES[method])
        return None

    # --- POST /token -----------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        """The JWT-bearer grant: a signed assertion for a service account (and subject)."""
        self._calls["token"] += 1
        form = await read_form(request)
        if form.get("grant_type") != JWT_BEARER:
            return oauth_error(
                400, "unsupported_grant_type", "Invalid grant_type: " + str(form.get("grant_type"))
            )
        assertion = str(form.get("assertion") or "")
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return oauth_error(400, "invalid_grant", "Invalid JWT: malformed assertion.")
        with self._lock:
            account = self.service_accounts.get(str(unverified.get("iss")))
        if account is None:
            return oauth_error(400, "invalid_grant", "Invalid grant: account not found")
        if header.get("kid") not in (None, account["private_key_id"]):
            return oauth_error(400, "invalid_grant", "Invalid JWT Signature.")
        try:
            claims = jwt.decode(
                assertion,
                account["public_key"],
                algorithms=["RS256"],
                # google-auth signs aud=https://oauth2.googleapis.com/token whatever the
                # key file's token_uri says; Google also accepts its own URL.
                audience=[GOOGLE_TOKEN_URL, self.token_uri],
                options={"require": ["iss", "aud", "exp", "iat"]},
                leeway=30,
            )
        except jwt.InvalidSignatureError:
            return oauth_error(400, "invalid_grant", "Invalid JWT Signature.")
        except jwt.ExpiredSignatureError:
            return oauth_error(400, "invalid_grant", _SHORT_LIVED)
        except jwt.PyJWTError as err:
            return oauth_error(400, "invalid_grant", f"Invalid JWT: {err}")
        if claims["exp"] - claims["iat"] > 3600 + 30:
            return oauth_error(400, "invalid_grant", _SHORT_LIVED)
        scopes = set(str(claims.get("scope", "")).split())
        if not scopes:
            return oauth_error(
                400, "invalid_scope", "Invalid OAuth scope or ID token audience provided."
            )
        subject = claims.get("sub")
        with self._lock:
            if subject is not None:
                subject = str(subject).lower()
                if not self._is_user(subject):
                    return oauth_error(400, "invalid_grant", "Invalid email or User ID")
                granted = self.delegations.get(account["client_id"], set())
                if not scopes <= granted:
                    return oauth_error(
                        401,
                        "unauthorized_client",
                        "Client is unauthorized to retrieve access tokens using this method, "
                        "or client not authorized for any of the scopes requested.",
                    )
            token = "ya29." + secrets.token_urlsafe(32)
            self.access_tokens[token] = {
                "subject": subject,
                "scopes": {s.removeprefix(SCOPE_PREFIX) for s in scopes},
                "expires": time.time() + self.token_lifetime,
            }
        return JSONResponse(
            {"access_token": token, "expires_in": self.token_lifetime - 1, "token_type": "Bearer"}
        )
