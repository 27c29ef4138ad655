"""A person's own Google grant: OAuth 2.0 for web server applications, with PKCE.

``google-auth-oauthlib``'s ``Flow`` builds the authorization URL (``access_type=offline``
for a refresh token, ``prompt=consent`` so Google sends one each time the person connects,
``code_challenge_method=S256``) and redeems the code with the verifier; ``google-auth``'s
``Credentials`` then refresh access tokens from the refresh token on every call that needs
one. The endpoints come from the issuer's discovery document
(``{issuer}/.well-known/openid-configuration``), so a private or emulated issuer works the
same as ``https://accounts.google.com``.

A *grant* is what we keep of a connection, a JSON string (the refresh token and the scopes
granted) that the caller stores encrypted and hands back on each call; it never appears
in a log line or a repr.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import warnings
from collections.abc import Sequence
from typing import Any

import requests
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow
from oauthlib.oauth2.rfc6749.errors import OAuth2Error

from connectors.base import Identity
from connectors.google.client import SCOPES
from connectors.oidc import AuthRefused, IdTokenVerifier, new_verifier
from connectors.tls import ca_bundle_file

log = logging.getLogger(__name__)
# requests-oauthlib logs token requests and answers (codes, verifiers, refresh tokens) at
# DEBUG: whatever level the service logs at, those lines never get through.
for _chatty in ("requests_oauthlib", "oauthlib"):
    logging.getLogger(_chatty).setLevel(logging.INFO)

DEFAULT_ISSUER = "https://accounts.google.com"
EMAIL_SCOPE = "https://www.googleapis.com/auth/userinfo.email"
SIGN_IN_SCOPES: tuple[str, ...] = ("openid", EMAIL_SCOPE)
# The two calendar scopes the admin mode delegates, plus who the person is (so the grant
# is bound to the rep's own mailbox): nothing more.
CONNECT_SCOPES: tuple[str, ...] = (*SIGN_IN_SCOPES, *SCOPES)


class GoogleOAuth:
    """One web OAuth client (id + secret) of one Google issuer."""

    name = "google"
    label = "Google"

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        issuer: str = DEFAULT_ISSUER,
        timeout: float = 10.0,
    ) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.issuer = issuer.rstrip("/")
        self.timeout = timeout
        self._config: dict[str, Any] | None = None
        self._verifier: IdTokenVerifier | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"GoogleOAuth(client_id={self.client_id!r}, issuer={self.issuer!r})"

    # --- discovery --------------------------------------------------------------------

    def _discovery(self) -> dict[str, Any]:
        with self._lock:
            if self._config is None:
                url = f"{self.issuer}/.well-known/openid-configuration"
                try:
                    resp = requests.get(url, timeout=self.timeout, verify=ca_bundle_file() or True)
                    resp.raise_for_status()
                    config = resp.json()
                except (requests.RequestException, ValueError) as err:
                    raise AuthRefused(
                        f"Google's sign-in service cannot be reached ({url})"
                    ) from err
                self._config = config
                self._verifier = IdTokenVerifier(
                    config["jwks_uri"], config.get("issuer", self.issuer), self.client_id
                )
            return self._config

    def _flow(self, redirect_uri: str, scopes: Sequence[str], verifier: str) -> Flow:
        config = self._discovery()
        flow = Flow.from_client_config(
            {
                "web": {
                    "client_id": self.client_id,
                    "client_secret": self._client_secret,
                    "auth_uri": config["authorization_endpoint"],
                    "token_uri": config["token_endpoint"],
                    "redirect_uris": [redirect_uri],
                }
            },
            scopes=list(scopes),
            redirect_uri=redirect_uri,
            code_verifier=verifier,
            autogenerate_code_verifier=False,
        )
        bundle = ca_bundle_file()
        if bundle:
            flow.oauth2session.verify = bundle
        return flow

    # --- the flow ---------------------------------------------------------------------

    def begin(
        self, *, redirect_uri: str, state: str, connect: bool, login_hint: str | None
    ) -> tuple[str, str]:
        """``(authorization URL, pending)``: ``pending`` (the PKCE verifier, the nonce) is
        kept server-side until the callback; it never travels in a URL."""
        verifier = new_verifier()
        nonce = secrets.token_urlsafe(24)
        scopes = CONNECT_SCOPES if connect else SIGN_IN_SCOPES
        flow = self._flow(redirect_uri, scopes, verifier)
        extra: dict[str, str] = {"nonce": nonce, "access_type": "online"}
        if login_hint:
            extra["login_hint"] = login_hint
        if connect:
            # offline: a refresh token; consent: Google sends one again on a reconnect.
            extra |= {"access_type": "offline", "prompt": "consent"}
        url, _ = flow.authorization_url(state=state, **extra)
        return url, json.dumps({"verifier": verifier, "nonce": nonce, "connect": connect})

    def finish(
        self, *, redirect_uri: str, pending: str, params: dict[str, str]
    ) -> tuple[Identity, str | None]:
        """Redeem the code with the verifier; ``(who, grant or None)``. ``AuthRefused``
        when Google or our id_token checks refuse (nothing is kept then)."""
        if params.get("error"):
            raise AuthRefused(f"Google answered {params['error']}", error=params["error"])
        code = params.get("code")
        if not code:
            raise AuthRefused("the answer carries no authorization code")
        kept = json.loads(pending)
        connect = bool(kept["connect"])
        scopes = CONNECT_SCOPES if connect else SIGN_IN_SCOPES
        flow = self._flow(redirect_uri, scopes, kept["verifier"])
        try:
            with warnings.catch_warnings():
                # oauthlib warns (as an exception) when fewer scopes were granted.
                warnings.simplefilter("error")
                flow.fetch_token(code=code)
        except OAuth2Error as err:
            raise AuthRefused(f"Google refused the code ({err.error})", error=err.error) from None
        except Warning:
            raise AuthRefused(
                "calendar access was not granted: tick both calendar boxes on Google's page",
                error="scope_not_granted",
            ) from None
        except requests.RequestException as err:
            raise AuthRefused("Google's token endpoint cannot be reached") from err
        token = dict(flow.oauth2session.token or {})
        assert self._verifier is not None
        who = self._verifier.verify(str(token.get("id_token", "")), nonce=kept["nonce"])
        if not connect:
            return who, None
        refresh = token.get("refresh_token")
        if not refresh:
            raise AuthRefused("Google sent no refresh token (offline access not granted)")
        granted = token.get("scope") or list(scopes)
        granted = granted.split() if isinstance(granted, str) else list(granted)
        return who, json.dumps({"v": 1, "refresh_token": refresh, "scopes": granted})

    # --- using a grant -----------------------------------------------------------------

    def credentials(self, grant: str) -> Credentials:
        """google-auth credentials that refresh from the grant's refresh token."""
        data = json.loads(grant)
        config = self._discovery()
        return Credentials(
            token=None,
            refresh_token=data["refresh_token"],
            token_uri=config["token_endpoint"],
            client_id=self.client_id,
            client_secret=self._client_secret,
            scopes=list(SCOPES),
        )

    def release(self, rep_id: str, grant: str) -> None:
        """The rep is deleted: Google revokes the grant (the person's access list no
        longer shows NextStep)."""
        self.revoke(grant)

    def revoke(self, grant: str) -> None:
        """Tell Google we no longer hold the grant (rep deleted or disconnected)."""
        data = json.loads(grant)
        endpoint = self._discovery().get("revocation_endpoint")
        if not endpoint:
            return
        try:
            requests.post(
                endpoint,
                data={"token": data["refresh_token"]},
                timeout=self.timeout,
                verify=ca_bundle_file() or True,
            )
        except requests.RequestException:
            log.warning("google.revoke_failed")
