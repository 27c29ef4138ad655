"""The Microsoft identity platform's delegated flows, emulated.

Follows "Microsoft identity platform and OAuth 2.0 authorization code flow" and "OpenID
Connect on the Microsoft identity platform": the authorization endpoint
(``GET /{tenant}/oauth2/v2.0/authorize``, PKCE ``S256``, ``nonce``, ``prompt``,
``login_hint``); the token endpoint's ``authorization_code`` and ``refresh_token``
grants (a new refresh token with each refresh, ``client_info`` when asked for with
``client_info=1``, as MSAL does); the JWKS (``GET /{tenant}/discovery/v2.0/keys``).
Errors carry their AADSTS numbers: ``AADSTS70008`` (code used or expired),
``AADSTS501481`` (PKCE verifier does not match), ``AADSTS50148`` (redirect URI differs),
``AADSTS700082`` / ``AADSTS50173`` (refresh token revoked), ``AADSTS50076``
(``interaction_required``: multi-factor authentication now needed) and ``AADSTS65001``
(``consent_required``: the person must consent again).

Delegated Graph tokens carry ``scp`` (the person's consented scopes) and ``upn``: such a
token reaches only the person's own mailbox.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import jwt
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from tests.emulators.common.oidc import IdentityProvider

GRAPH = "https://graph.microsoft.com/"
OIDC_SCOPES = {"openid", "profile", "email", "offline_access"}


class DelegatedAuth:
    """People of the tenant, their consents, codes and refresh tokens."""

    def __init__(
        self,
        *,
        tenant_id: str,
        signing_key: bytes,
        oauth_error: Callable[[int, str, str], Response],
    ) -> None:
        self.tenant_id = tenant_id
        self._graph_key = signing_key
        self._oauth_error = oauth_error
        self.idp = IdentityProvider()
        self.base_url = ""
        self.interaction_required: set[str] = set()  # people who must do MFA again
        self.consent_required: set[str] = set()  # people whose consent was withdrawn
        self._jti: dict[str, str] = {}  # access token id -> refresh token

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/{self.tenant_id}/v2.0"

    def oid(self, email: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"person:{email.lower()}"))

    # --- endpoints -------------------------------------------------------------------

    async def keys(self, request: Request) -> Response:
        return JSONResponse(self.idp.jwks())

    async def authorize(self, request: Request) -> Response:
        redirect, query = self.idp.authorize(dict(request.query_params))
        if redirect is None:
            return HTMLResponse(
                "<h1>Sorry, but we're having trouble signing you in.</h1><p>AADSTS50011: The "
                "redirect URI specified in the request does not match the redirect URIs "
                "configured for the application.</p>",
                status_code=400,
            )
        if query.get("error") == "access_denied":
            query["error_description"] = "AADSTS65004: User declined to consent to access the app."
        return RedirectResponse(f"{redirect}?{urlencode(query)}", status_code=302)

    async def token(self, request: Request, form: dict[str, str]) -> Response:
        err = self._oauth_error
        client = self.idp.client_of(form, None)
        if client is None:
            return err(
                401,
                "invalid_client",
                "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent "
                "in the request is the client secret value, not the client secret ID.",
            )
        if form.get("grant_type") == "refresh_token":
            refresh = form.get("refresh_token", "")
            grant = self.idp.grant_of(client, refresh)
            if grant is None:
                return err(
                    400,
                    "invalid_grant",
                    "AADSTS50173: The provided grant has expired due to it being revoked, a "
                    "fresh auth token is needed. The user might have changed or reset their "
                    "password.",
                )
            if grant.user in self.interaction_required:
                return err(
                    400,
                    "interaction_required",
                    "AADSTS50076: Due to a configuration change made by your administrator, "
                    "or because you moved to a new location, you must use multi-factor "
                    "authentication to access this resource.",
                )
            if grant.user in self.consent_required:
                return err(
                    400,
                    "invalid_grant",
                    "AADSTS65001: The user or administrator has not consented to use the "
                    "application. Send an interactive authorization request for this user "
                    "and resource.",
                )
            return self._answer(client, grant.user, grant.scopes, form, nonce=None)
        code = self.idp.redeem(client, form)
        if code == "pkce":
            return err(
                400,
                "invalid_grant",
                "AADSTS501481: The Code_Verifier does not match the code_challenge supplied "
                "in the authorization request.",
            )
        if code == "redirect_uri":
            return err(
                400,
                "invalid_grant",
                "AADSTS50148: The redirect_uri doesn't match the one used in the "
                "authorization request.",
            )
        if isinstance(code, str):
            return err(
                400,
                "invalid_grant",
                "AADSTS70008: The provided authorization code or refresh token has expired "
                "due to inactivity. Send a new interactive authorization request for this "
                "user and resource.",
            )
        return self._answer(client, code.user, code.scopes, form, nonce=code.nonce)

    def _answer(
        self,
        client: Any,
        user: str,
        scopes: tuple[str, ...],
        form: dict[str, str],
        *,
        nonce: str | None,
    ) -> Response:
        _, refresh = self.idp.issue(client, user, scopes)
        now = int(time.time())
        oid = self.oid(user)
        jti = uuid.uuid4().hex
        self._jti[jti] = refresh or ""
        resource = sorted(s for s in scopes if s not in OIDC_SCOPES)
        access = jwt.encode(
            {
                "aud": "https://graph.microsoft.com",
                "iss": f"https://sts.windows.net/{self.tenant_id}/",
                "iat": now,
                "nbf": now,
                "exp": now + self.idp.token_lifetime,
                "appid": client.client_id,
                "oid": oid,
                "upn": user,
                "scp": " ".join(s.removeprefix(GRAPH) for s in resource),
                "tid": self.tenant_id,
                "jti": jti,
            },
            self._graph_key,
            algorithm="HS256",
        )
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(scopes),
            "expires_in": self.idp.token_lifetime,
            "ext_expires_in": self.idp.token_lifetime,
            "access_token": access,
        }
        if "offline_access" in scopes and refresh:
            body["refresh_token"] = refresh
        if "openid" in scopes:
            person = self.idp.people.get(user, {})
            claims: dict[str, Any] = {
                "ver": "2.0",
                "iss": self.issuer,
                "sub": oid.replace("-", "")[:22],
                "aud": client.client_id,
                "exp": now + 3600,
                "iat": now,
                "nbf": now,
                "name": person.get("name", user),
                "preferred_username": user,
                "oid": oid,
                "tid": self.tenant_id,
            }
            if "email" in scopes:  # the mail attribute: any tenant admin may set it to anything
                claims["email"] = person.get("mail", user)
            if nonce:
                claims["nonce"] = nonce
            body["id_token"] = self.idp.sign(claims)
        if form.get("client_info") == "1":
            info = json.dumps({"uid": oid, "utid": self.tenant_id}).encode()
            body["client_info"] = base64.urlsafe_b64encode(info).rstrip(b"=").decode()
        return JSONResponse(body)

    # --- Graph's view of delegated tokens --------------------------------------------

    def alive(self, claims: dict[str, Any]) -> bool:
        """Whether a delegated token's grant still stands (revocation kills its tokens)."""
        refresh = self._jti.get(str(claims.get("jti")))
        if refresh is None:
            return False
        grant = self.idp.grants.get(refresh)
        return grant is not None and not grant.revoked

    def revoke_user(self, email: str) -> None:
        """The person's sessions were revoked (``revokeSignInSessions``)."""
        self.idp.revoke_user(email)
        for jti, refresh in list(self._jti.items()):
            grant = self.idp.grants.get(refresh)
            if grant is not None and grant.user == email.lower():
                del self._jti[jti]
