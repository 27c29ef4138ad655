"""The Microsoft identity platform side: app registrations, tokens, and their checks.

Exactly the two calls MSAL makes with ``instance_discovery=False``: tenant discovery at
``GET /{tenant}/v2.0/.well-known/openid-configuration`` and the client-credentials grant
at the ``token_endpoint`` it names (``POST /{tenant}/oauth2/v2.0/token``). Tokens are
JWTs signed with a key only the emulator knows; ``authenticate`` checks one on a Graph
call (``401 InvalidAuthenticationToken`` otherwise).
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.emulators.common.http import read_form
from tests.emulators.microsoft.errors import GraphHTTPError
from tests.emulators.microsoft.oauth import DelegatedAuth


@dataclass
class App:
    client_id: str
    secret: str
    roles: set[str]
    object_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    user: str | None = None  # a delegated token: only this person's mailbox


class Identity:
    """One tenant's app registrations and the access tokens issued to them."""

    def __init__(
        self,
        *,
        lock: threading.RLock,
        calls: Counter[str],
        clock: Callable[[], datetime],
        tenant_id: str,
        token_lifetime: int,
    ) -> None:
        self._lock = lock
        self._calls = calls
        self._clock = clock
        self._signing_key = secrets.token_bytes(32)
        self._issued: set[str] = set()
        self._revoked: set[str] = set()
        self.tenant_id = tenant_id
        self.token_lifetime = token_lifetime
        self.apps: dict[str, App] = {}
        self.delegated = DelegatedAuth(
            tenant_id=tenant_id, signing_key=self._signing_key, oauth_error=self._oauth_error
        )

    @property
    def base_url(self) -> str:
        """Where the emulator is served; discovery names endpoints under it."""
        return self.delegated.base_url

    @base_url.setter
    def base_url(self, url: str) -> None:
        self.delegated.base_url = url

    def register_app(self, client_id: str, secret: str, *, roles: set[str]) -> App:
        with self._lock:
            app = self.apps[client_id] = App(client_id, secret, set(roles))
            return app

    def revoke_tokens(self) -> None:
        """Invalidate every access token issued so far (Graph answers 401)."""
        with self._lock:
            self._revoked |= self._issued

    def authenticate(self, request: Request) -> App:
        """The app a Graph call's bearer token was issued to; GraphHTTPError 401 else."""
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            raise GraphHTTPError(401, "InvalidAuthenticationToken", "Access token is empty.")
        try:
            claims = jwt.decode(
                auth[7:].strip(),
                self._signing_key,
                algorithms=["HS256"],
                audience="https://graph.microsoft.com",
                options={"verify_exp": False},
            )
        except jwt.PyJWTError as err:
            raise GraphHTTPError(
                401, "InvalidAuthenticationToken", f"Access token validation failure. {err}"
            ) from err
        now = self._clock().timestamp()
        if claims["exp"] <= now:
            raise GraphHTTPError(
                401,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            )
        if claims.get("jti") in self._revoked:
            raise GraphHTTPError(
                401, "InvalidAuthenticationToken", "Access token has been revoked."
            )
        app = self.apps.get(claims["appid"])
        if app is None or claims.get("tid") != self.tenant_id:
            raise GraphHTTPError(
                401, "InvalidAuthenticationToken", "Access token validation failure."
            )
        if "scp" in claims:  # delegated: the person's consented scopes, own mailbox only
            if not self.delegated.alive(claims):
                raise GraphHTTPError(
                    401, "InvalidAuthenticationToken", "Access token has been revoked."
                )
            return replace(
                app, roles=set(str(claims["scp"]).split()), user=str(claims["upn"]).lower()
            )
        return app

    # --- endpoints -----------------------------------------------------------------

    async def openid_configuration(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        with self._lock:
            self._calls["GET openid-configuration"] += 1
        if tenant not in (self.tenant_id, "organizations", "common"):
            return JSONResponse(
                {
                    "error": "invalid_tenant",
                    "error_description": f"AADSTS90002: Tenant '{tenant}' not found.",
                },
                status_code=400,
            )
        base = f"{self.base_url}/{tenant}"
        return JSONResponse(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{self.base_url}/{self.tenant_id}/v2.0",
                "request_uri_parameter_supported": False,
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "tenant_region_scope": "EU",
            }
        )  # fmt: skip

    def _oauth_error(self, status: int, error: str, desc: str) -> Response:
        """The token endpoint's error JSON (``error_codes`` from the AADSTS number)."""
        return JSONResponse(
            {
                "error": error,
                "error_description": desc,
                "error_codes": [int(desc.split(":")[0][6:])] if desc.startswith("AADSTS") else [],
                "timestamp": self._clock().strftime("%Y-%m-%d %H:%M:%SZ"),
                "trace_id": str(uuid.uuid4()),
                "correlation_id": str(uuid.uuid4()),
            },
            status_code=status,
        )

    async def token(self, request: Request) -> Response:
        """The client-credentials grant: an app's secret for a Graph ``/.default`` token."""
        form = await read_form(request)
        with self._lock:
            self._calls["POST token"] += 1
        tenant = request.path_params["tenant"]
        oauth_error = self._oauth_error
        if form.get("grant_type") in ("authorization_code", "refresh_token") and tenant in (
            self.tenant_id,
            "organizations",
            "common",
        ):
            return await self.delegated.token(request, form)
        if tenant != self.tenant_id:
            return oauth_error(400, "invalid_request", f"AADSTS90002: Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return oauth_error(
                400,
                "unsupported_grant_type",
                "AADSTS70003: The app requested an unsupported grant type.",
            )
        client_id = str(form.get("client_id") or "")
        app = self.apps.get(client_id)
        if app is None:
            return oauth_error(
                400,
                "unauthorized_client",
                f"AADSTS700016: Application with identifier '{client_id}' was not found in the directory '{self.tenant_id}'.",
            )
        if not secrets.compare_digest(str(form.get("client_secret") or ""), app.secret):
            return oauth_error(
                401,
                "invalid_client",
                f"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'.",
            )
        scopes = str(form.get("scope") or "").split()
        if "https://graph.microsoft.com/.default" not in scopes:
            return oauth_error(
                400,
                "invalid_scope",
                "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
            )
        now = int(self._clock().timestamp())
        jti = secrets.token_hex(8)
        with self._lock:
            self._issued.add(jti)
        token = jwt.encode(
            {
                "aud": "https://graph.microsoft.com",
                "iss": f"https://sts.windows.net/{self.tenant_id}/",
                "iat": now,
                "nbf": now,
                "exp": now + self.token_lifetime,
                "appid": app.client_id,
                "oid": app.object_id,
                "roles": sorted(app.roles),
                "tid": self.tenant_id,
                "jti": jti,
            },
            self._signing_key,
            algorithm="HS256",
        )
        return JSONResponse(
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime,
                "access_token": token,
            }
        )
