"""A person's own Microsoft grant: MSAL's delegated authorization code flow.

``initiate_auth_code_flow`` makes the authorization URL (PKCE, ``state``, ``nonce``: MSAL
keeps them in the *flow* dict, which the caller keeps server-side, encrypted, until the
callback); ``acquire_token_by_auth_code_flow`` checks the answer against the flow (state,
then the id_token's nonce) and redeems the code with the verifier. The tokens live in a
``SerializableTokenCache`` per rep: its serialized form is the *grant* the caller stores
encrypted. Every Graph call gets its token from ``acquire_token_silent`` (through
``acquire_token_silent_with_error``, the same call that also says why it failed), which
uses the cached access token or redeems the refresh token; when the cache changed
(Microsoft rotates refresh tokens) the new grant is handed back to be stored.

Refusals: ``invalid_grant`` (revoked, expired, consent withdrawn — ``AADSTS65001``),
``interaction_required`` (multi-factor authentication or a policy now asks the person to
sign in again), ``consent_required``: all mean the person must connect again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import msal
import requests
import requests.adapters

from connectors.base import Identity
from connectors.oidc import AuthRefused, IdTokenVerifier
from connectors.tls import ca_bundle_file

log = logging.getLogger(__name__)
logging.getLogger("msal").setLevel(logging.INFO)  # its DEBUG lines describe token traffic

DEFAULT_AUTHORITY = "https://login.microsoftonline.com/organizations"
GRAPH_CALENDARS = "https://graph.microsoft.com/Calendars.ReadWrite"
CONNECT_SCOPES: tuple[str, ...] = (GRAPH_CALENDARS, "email")
SIGN_IN_SCOPES: tuple[str, ...] = ("email",)
REAUTHORIZE = frozenset({"invalid_grant", "interaction_required", "consent_required"})


class DelegatedTokenError(Exception):
    """MSAL could not give a delegated token (``error`` is the OAuth error code)."""

    def __init__(self, error: str, description: str = "") -> None:
        super().__init__(f"{error}: {description}".rstrip(": "))
        self.error = error
        self.description = description


@dataclass
class _RepCache:
    app: msal.ConfidentialClientApplication
    cache: msal.SerializableTokenCache
    grants: set[str]  # serialized forms this cache stands for (loaded and saved)
    lock: threading.Lock


class MicrosoftOAuth:
    """One multi-tenant (or single-tenant) web app registration of the Microsoft identity
    platform, used for sign-in and for reps' delegated calendar access."""

    name = "microsoft"
    label = "Microsoft"

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        authority: str = DEFAULT_AUTHORITY,
        timeout: float = 10.0,
    ) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.authority = authority.rstrip("/")
        self.custom_authority = not self.authority.lower().startswith(
            "https://login.microsoftonline.com/"
        )
        self.timeout = timeout
        self._session: requests.Session | None = None
        self._reps: dict[str, _RepCache] = {}
        self._lock = threading.Lock()
        self._verifier: IdTokenVerifier | None = None

    def __repr__(self) -> str:
        return f"MicrosoftOAuth(client_id={self.client_id!r}, authority={self.authority!r})"

    def _http(self) -> requests.Session:
        if self._session is None:
            session = requests.Session()
            session.mount("https://", requests.adapters.HTTPAdapter(max_retries=1))
            defaults: dict[str, Any] = {"timeout": self.timeout}
            bundle = ca_bundle_file()
            if bundle:
                defaults["verify"] = bundle
            session.request = functools.partial(  # type: ignore[method-assign]
                session.request, **defaults
            )
            self._session = session
        return self._session

    def _app(self, cache: msal.SerializableTokenCache | None = None) -> Any:
        kwargs: dict[str, Any] = {
            "client_credential": self._client_secret,
            "authority": self.authority,
            "http_client": self._http(),
            "token_cache": cache,
        }
        if self.custom_authority:
            kwargs["instance_discovery"] = False
            kwargs["validate_authority"] = False
        try:
            return msal.ConfidentialClientApplication(self.client_id, **kwargs)
        except (ValueError, requests.RequestException) as err:
            raise AuthRefused(f"Microsoft's sign-in service cannot be reached ({err})") from err

    def _id_tokens(self) -> IdTokenVerifier:
        if self._verifier is None:
            url = f"{self.authority}/v2.0/.well-known/openid-configuration"
            try:
                config = self._http().get(url).json()
            except (requests.RequestException, ValueError) as err:
                raise AuthRefused(f"Microsoft's sign-in service cannot be reached ({url})") from err
            self._verifier = IdTokenVerifier(config["jwks_uri"], config["issuer"], self.client_id)
        return self._verifier

    # --- the flow ---------------------------------------------------------------------

    def begin(
        self, *, redirect_uri: str, state: str, connect: bool, login_hint: str | None
    ) -> tuple[str, str]:
        """``(authorization URL, pending)``; ``pending`` is MSAL's flow (verifier, nonce)."""
        app = self._app()
        with warnings.catch_warnings():
            # MSAL recommends response_mode=form_post; the answer comes back in the query
            # instead (one callback for both providers), which is safe here: the code is
            # single-use, PKCE-bound, and the callback redirects at once to a clean URL.
            warnings.simplefilter("ignore", UserWarning)
            flow = app.initiate_auth_code_flow(
                list(CONNECT_SCOPES if connect else SIGN_IN_SCOPES),
                redirect_uri=redirect_uri,
                state=state,
                login_hint=login_hint,
                prompt="select_account",
            )
        return str(flow["auth_uri"]), json.dumps({"flow": flow, "connect": connect})

    def finish(
        self, *, redirect_uri: str, pending: str, params: dict[str, str]
    ) -> tuple[Identity, str | None]:
        kept = json.loads(pending)
        flow, connect = kept["flow"], bool(kept["connect"])
        if flow.get("redirect_uri") != redirect_uri:
            raise AuthRefused("the answer came to another address")
        if params.get("error"):
            raise AuthRefused(f"Microsoft answered {params['error']}", error=params["error"])
        cache = msal.SerializableTokenCache()
        app = self._app(cache)
        try:
            result = app.acquire_token_by_auth_code_flow(flow, dict(params))
        except ValueError as err:  # state mismatch, or an answer that is not this flow's
            raise AuthRefused(f"the answer does not belong to this sign-in ({err})") from None
        except requests.RequestException as err:
            raise AuthRefused("Microsoft's token endpoint cannot be reached") from err
        if "error" in result:
            error = str(result["error"])
            raise AuthRefused(f"Microsoft refused the code ({error})", error=error)
        who = self._id_tokens().verify(
            str(result.get("id_token", "")),
            # MSAL sends the SHA-256 of the flow's nonce; the id_token echoes what was sent.
            nonce=hashlib.sha256(str(flow.get("nonce", "")).encode()).hexdigest(),
            # Not "email": any tenant's admin can set it to any address ("nOAuth"). The
            # user principal name's domain is verified by the tenant that issues it.
            email_claims=("preferred_username",),
        )
        if "#ext#" in who.email:  # a guest account: its UPN names the home tenant's address
            raise AuthRefused("guest accounts cannot sign in; use your own organisation's account")
        if not connect:
            return who, None
        if GRAPH_CALENDARS.rsplit("/", 1)[1].lower() not in str(result.get("scope", "")).lower():
            raise AuthRefused("calendar access was not granted", error="scope_not_granted")
        return who, cache.serialize()

    # --- using a grant -----------------------------------------------------------------

    def access_token(
        self, rep_id: str, grant: str, *, force_refresh: bool = False
    ) -> tuple[str, str | None]:
        """``(access token, new grant or None)`` for a Graph call of the rep.

        ``DelegatedTokenError`` when the person must connect again (or MSAL cannot tell).
        """
        with self._lock:
            entry = self._reps.get(rep_id)
            if entry is None or grant not in entry.grants:
                cache = msal.SerializableTokenCache()
                cache.deserialize(grant)
                entry = self._reps[rep_id] = _RepCache(
                    self._app(cache), cache, {grant}, threading.Lock()
                )
        with entry.lock:
            accounts = entry.app.get_accounts()
            if not accounts:
                raise DelegatedTokenError("no_account", "the grant holds no signed-in account")
            result = entry.app.acquire_token_silent_with_error(
                [GRAPH_CALENDARS], account=accounts[0], force_refresh=force_refresh
            )
            if not result or "access_token" not in result:
                result = result or {}
                raise DelegatedTokenError(
                    str(result.get("error") or "interaction_required"),
                    str(result.get("error_description") or "no token in the cache"),
                )
            new_grant = None
            if entry.cache.has_state_changed:
                new_grant = entry.cache.serialize()
                entry.cache.has_state_changed = False
                entry.grants.add(new_grant)
            return str(result["access_token"]), new_grant

    def release(self, rep_id: str, grant: str) -> None:
        """The rep is deleted: the identity platform has no endpoint to revoke one
        refresh token of a web app, so the cache is dropped (it is deleted with the rep)."""
        with self._lock:
            self._reps.pop(rep_id, None)

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()
