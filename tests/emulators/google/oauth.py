"""Google's OAuth 2.0 for web server applications and OpenID Connect, emulated.

Follows "Using OAuth 2.0 for Web Server Applications" and "OpenID Connect" (Google
Identity): the discovery document at ``/.well-known/openid-configuration``; the
authorization endpoint (``/o/oauth2/v2/auth``: ``access_type=offline`` gives a refresh
token, PKCE with ``S256``); the token endpoint (``POST /token``: ``authorization_code``
and ``refresh_token`` grants next to the service accounts' JWT-bearer grant); the
revocation endpoint (``POST /revoke``); the JWKS (``/oauth2/v3/certs``). Answers are
Google's: ``invalid_grant`` / "Bad Request" for a used or unknown code,
"Invalid code verifier." for a wrong PKCE verifier, "Token has been expired or revoked."
for a dead refresh token, ``invalid_client`` / "Unauthorized" for a bad client secret.

Access tokens minted here are also Calendar API tokens (the store's ``access_tokens``,
subject = the person), so a connected rep's calendar is read with the person's own grant.
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.emulators.common.http import read_form
from tests.emulators.common.oidc import IdentityProvider
from tests.emulators.google.auth import JWT_BEARER, SCOPE_PREFIX, ServiceAccounts
from tests.emulators.google.errors import oauth_error

EMAIL_SCOPES = ("email", f"{SCOPE_PREFIX}userinfo.email")


class GoogleOAuth:
    """Web-server OAuth clients and people of one Google emulator."""

    def __init__(self, accounts: ServiceAccounts) -> None:
        self.accounts = accounts
        self.idp = IdentityProvider()
        self.root = ""  # the emulator's root URL, with its slash, once served

    @property
    def issuer(self) -> str:
        return self.root.rstrip("/")

    def routes(self) -> list[Route]:
        return [
            Route("/.well-known/openid-configuration", self.discovery, methods=["GET"]),
            Route("/o/oauth2/v2/auth", self.authorize, methods=["GET"]),
            Route("/token", self.token, methods=["POST"]),
            Route("/revoke", self.revoke, methods=["POST"]),
            Route("/oauth2/v3/certs", self.certs, methods=["GET"]),
        ]

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.root}o/oauth2/v2/auth",
                "token_endpoint": f"{self.root}token",
                "revocation_endpoint": f"{self.root}revoke",
                "jwks_uri": f"{self.root}oauth2/v3/certs",
                "response_types_supported": ["code", "token", "id_token", "code id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "client_secret_basic",
                ],
                "code_challenge_methods_supported": ["plain", "S256"],
                "grant_types_supported": [
                    "authorization_code",
                    "refresh_token",
                    JWT_BEARER,
                ],
            }
        )

    async def certs(self, request: Request) -> Response:
        return JSONResponse(self.idp.jwks())

    async def authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        redirect, query = self.idp.authorize(params)
        if redirect is None:
            return HTMLResponse(
                "<h1>Error 400: redirect_uri_mismatch</h1>"
                "<p>You can't sign in to this app because it doesn't comply with "
                "Google's OAuth 2.0 policy.</p>",
                status_code=400,
            )
        return RedirectResponse(f"{redirect}?{urlencode(query)}", status_code=302)

    async def token(self, request: Request) -> Response:
        form = await read_form(request)
        grant_type = form.get("grant_type")
        if grant_type == JWT_BEARER:
            return await self.accounts.token(request)
        if grant_type not in ("authorization_code", "refresh_token"):
            return oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        client = self.idp.client_of(form, _basic(request))
        if client is None:
            return oauth_error(401, "invalid_client", "Unauthorized")
        if grant_type == "refresh_token":
            grant = self.idp.grant_of(client, form.get("refresh_token", ""))
            if grant is None:
                return oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
            access, _ = self.idp.issue(
                client, grant.user, grant.scopes, refresh=form["refresh_token"]
            )
            self._calendar_token(access, grant.user, grant.scopes)
            return JSONResponse(
                {
                    "access_token": access,
                    "expires_in": self.idp.token_lifetime - 1,
                    "scope": " ".join(grant.scopes),
                    "token_type": "Bearer",
                }
            )
        code = self.idp.redeem(client, form)
        if code == "pkce":
            return oauth_error(400, "invalid_grant", "Invalid code verifier.")
        if code == "redirect_uri":
            return oauth_error(400, "redirect_uri_mismatch", "Bad Request")
        if isinstance(code, str):
            return oauth_error(400, "invalid_grant", "Bad Request")
        access, refresh = self.idp.issue(client, code.user, code.scopes)
        self._calendar_token(access, code.user, code.scopes)
        body: dict[str, Any] = {
            "access_token": access,
            "expires_in": self.idp.token_lifetime - 1,
            "scope": " ".join(code.scopes),
            "token_type": "Bearer",
        }
        if code.offline and refresh:
            body["refresh_token"] = refresh
        if "openid" in code.scopes:
            now = int(time.time())
            person = self.idp.people[code.user]
            claims: dict[str, Any] = {
                "iss": self.issuer,
                "azp": client.client_id,
                "aud": client.client_id,
                "sub": person.get("sub") or _subject(code.user),
                "iat": now,
                "exp": now + 3600,
            }
            if any(s in code.scopes for s in EMAIL_SCOPES):
                claims |= {"email": code.user, "email_verified": True}
            if code.nonce:
                claims["nonce"] = code.nonce
            body["id_token"] = self.idp.sign(claims)
        return JSONResponse(body)

    async def revoke(self, request: Request) -> Response:
        form = await read_form(request)
        token = form.get("token") or request.query_params.get("token", "")
        if not self.idp.revoke(token):
            return oauth_error(400, "invalid_token", "Token expired or revoked")
        self._drop_calendar_tokens()
        return JSONResponse({})

    def revoke_user(self, email: str) -> None:
        """The person removed the app at myaccount.google.com/permissions."""
        self.idp.revoke_user(email)
        self._drop_calendar_tokens()

    # --- the Calendar API's view of the tokens ------------------------------------

    def _calendar_token(self, access: str, user: str, scopes: tuple[str, ...]) -> None:
        with self.accounts._lock:
            self.accounts.access_tokens[access] = {
                "subject": user,
                "scopes": {s.removeprefix(SCOPE_PREFIX) for s in scopes},
                "expires": time.time() + self.idp.token_lifetime,
            }

    def _drop_calendar_tokens(self) -> None:
        with self.accounts._lock:
            for token in [t for t in self.accounts.access_tokens if t.startswith("at.")]:
                if self.idp.access(token) is None:
                    del self.accounts.access_tokens[token]


def _subject(email: str) -> str:
    """A stable numeric subject, as Google's are."""
    return str(int(hashlib.sha256(email.encode()).hexdigest()[:16], 16))


def _basic(request: Request) -> tuple[str, str] | None:
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("basic "):
        return None
    try:
        user, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
    except ValueError:
        return None
    return user, secret
