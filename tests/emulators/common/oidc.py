"""The parts of an OpenID Connect provider both identity emulators share.

What Google's "Using OAuth 2.0 for Web Server Applications" / "OpenID Connect" pages and
Microsoft's "OAuth 2.0 authorization code flow" page describe alike, and RFC 6749 / 7636
(PKCE) define:

- the authorization endpoint takes ``response_type=code``, ``client_id``, ``redirect_uri``
  (must be one registered for the client), ``scope``, ``state``, ``nonce``,
  ``code_challenge`` + ``code_challenge_method=S256``, and redirects back with
  ``?code=…&state=…`` (or ``?error=access_denied&state=…``). There is no login page: the
  person "signed in to the browser" is ``signed_in`` (a test knob), else ``login_hint``;
- an authorization code is single-use, bound to its client, redirect URI and PKCE
  challenge, and lives 10 minutes; the token endpoint checks
  ``BASE64URL(SHA256(code_verifier)) == code_challenge``;
- refresh tokens are opaque and stay valid until revoked (``revoke``); an id_token is an
  RS256 JWT whose key (``kid``) is published in a JWKS.

Each emulator words its answers (error descriptions, claims, extra fields) as its
provider does; this module only keeps the state and does the checks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CODE_LIFETIME = 600


@lru_cache(maxsize=2)
def signing_key(slot: int = 0) -> rsa.RSAPrivateKey:
    """An RSA key generated once per process (generation is slow)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: BASE64URL-ENCODE(SHA256(ASCII(code_verifier))), no padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class Client:
    client_id: str
    secret: str
    redirect_uris: set[str]


@dataclass
class Code:
    client_id: str
    redirect_uri: str
    user: str
    scopes: tuple[str, ...]
    nonce: str | None
    challenge: str | None
    method: str | None
    offline: bool
    expires: float


@dataclass
class Grant:
    """What a refresh token stands for; ``revoked`` once the person or admin revoked it."""

    client_id: str
    user: str
    scopes: tuple[str, ...]
    revoked: bool = False
    refreshed: int = 0


@dataclass
class AccessToken:
    client_id: str
    user: str
    scopes: tuple[str, ...]
    expires: float
    refresh_token: str | None = None


@dataclass
class IdentityProvider:
    """Clients, people, codes, grants and the signing key of one emulated IdP."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    key_id: str = field(default_factory=lambda: secrets.token_hex(8))
    clients: dict[str, Client] = field(default_factory=dict)
    people: dict[str, dict[str, Any]] = field(default_factory=dict)  # email -> claims
    codes: dict[str, Code] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)  # refresh token -> grant
    tokens: dict[str, AccessToken] = field(default_factory=dict)  # access token -> info
    signed_in: str | None = None  # who the browser is signed in as
    deny_consent: bool = False  # the person clicks "Cancel" on the consent screen
    grant_scopes: set[str] | None = None  # consent screen: only these scopes ticked
    token_lifetime: int = 3600
    requests: list[dict[str, str]] = field(default_factory=list)  # token endpoint forms

    # --- test controls -----------------------------------------------------------

    def register_client(self, client_id: str, secret: str, redirect_uris: set[str]) -> None:
        with self.lock:
            self.clients[client_id] = Client(client_id, secret, set(redirect_uris))

    def add_person(self, email: str, **claims: Any) -> None:
        with self.lock:
            self.people[email.lower()] = {"email": email.lower(), **claims}

    def revoke_user(self, email: str) -> None:
        """The person removed the app's access (their account page): every grant dies."""
        with self.lock:
            for grant in self.grants.values():
                if grant.user == email.lower():
                    grant.revoked = True
            for token in [t for t, a in self.tokens.items() if a.user == email.lower()]:
                del self.tokens[token]

    # --- the key -----------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(signing_key().public_key()))
        return {"keys": [{**jwk, "kid": self.key_id, "use": "sig", "alg": "RS256"}]}

    def sign(self, claims: dict[str, Any], *, key: rsa.RSAPrivateKey | None = None) -> str:
        return jwt.encode(
            claims, key or signing_key(), algorithm="RS256", headers={"kid": self.key_id}
        )

    # --- authorize ---------------------------------------------------------------

    def authorize(self, params: dict[str, str]) -> tuple[str | None, dict[str, str]]:
        """``(redirect_uri, query)`` to send the browser back with; redirect_uri None
        when it cannot be trusted (then the IdP shows an error page, never redirects)."""
        with self.lock:
            client = self.clients.get(params.get("client_id", ""))
            redirect = params.get("redirect_uri", "")
            if client is None or redirect not in client.redirect_uris:
                return None, {"error": "redirect_uri_mismatch"}
            out = {"state": params["state"]} if "state" in params else {}
            if params.get("response_type") != "code":
                return redirect, {**out, "error": "unsupported_response_type"}
            # The account the browser is signed in to wins; login_hint only pre-fills.
            user = (self.signed_in or params.get("login_hint") or "").lower()
            if self.deny_consent or user not in self.people:
                return redirect, {**out, "error": "access_denied"}
            scopes = tuple(params.get("scope", "").split())
            if self.grant_scopes is not None:
                scopes = tuple(s for s in scopes if s in self.grant_scopes)
            code = secrets.token_urlsafe(24)
            self.codes[code] = Code(
                client_id=client.client_id,
                redirect_uri=redirect,
                user=user,
                scopes=scopes,
                nonce=params.get("nonce"),
                challenge=params.get("code_challenge"),
                method=params.get("code_challenge_method"),
                offline=params.get("access_type") == "offline" or "offline_access" in scopes,
                expires=time.time() + CODE_LIFETIME,
            )
            return redirect, {"code": code, **out}

    # --- token endpoint checks (each emulator words the errors) ---------------------

    def client_of(self, form: dict[str, str], basic: tuple[str, str] | None) -> Client | None:
        client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        client = self.clients.get(client_id)
        if client is None or not secrets.compare_digest(secret, client.secret):
            return None
        return client

    def redeem(self, client: Client, form: dict[str, str]) -> Code | str:
        """The code's grant, or a reason: ``invalid_code``, ``redirect_uri``, ``pkce``."""
        with self.lock:
            self.requests.append(dict(form))
            code = self.codes.pop(form.get("code", ""), None)  # single use, even when refused
            if code is None or code.client_id != client.client_id or code.expires < time.time():
                return "invalid_code"
            if form.get("redirect_uri") != code.redirect_uri:
                return "redirect_uri"
            if code.challenge is not None:
                verifier = form.get("code_verifier", "")
                if code.method != "S256" or pkce_challenge(verifier) != code.challenge:
                    return "pkce"
            return code

    def issue(
        self, client: Client, user: str, scopes: tuple[str, ...], *, refresh: str | None = None
    ) -> tuple[str, str | None]:
        """``(access token, new refresh token or None)``."""
        with self.lock:
            access = "at." + secrets.token_urlsafe(32)
            new_refresh = None
            if refresh is None:
                new_refresh = "rt." + secrets.token_urlsafe(32)
                self.grants[new_refresh] = Grant(client.client_id, user, scopes)
            self.tokens[access] = AccessToken(
                client.client_id,
                user,
                scopes,
                time.time() + self.token_lifetime,
                refresh or new_refresh,
            )
            return access, new_refresh

    def grant_of(self, client: Client, refresh_token: str) -> Grant | None:
        with self.lock:
            grant = self.grants.get(refresh_token)
            if grant is None or grant.revoked or grant.client_id != client.client_id:
                return None
            grant.refreshed += 1
            return grant

    def revoke(self, token: str) -> bool:
        """Revoke a refresh token (its grant) or an access token (and its grant)."""
        with self.lock:
            grant = self.grants.get(token)
            access = self.tokens.pop(token, None)
            if access is not None and access.refresh_token:
                grant = self.grants.get(access.refresh_token)
            if grant is None:
                return access is not None
            grant.revoked = True
            for t in [t for t, a in self.tokens.items() if a.refresh_token == token]:
                del self.tokens[t]
            return True

    def access(self, token: str) -> AccessToken | None:
        with self.lock:
            info = self.tokens.get(token)
            if info is None or info.expires < time.time():
                return None
            grant = self.grants.get(info.refresh_token or "")
            if grant is not None and grant.revoked:
                return None
            return info
