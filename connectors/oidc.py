"""OpenID Connect pieces both identity providers share: PKCE, the id_token check.

``IdTokenVerifier.verify`` checks an id_token as OpenID Connect Core 1.0 §3.1.3.7 says:
the signature with a key of the provider's JWKS (by ``kid``; RS256 only — never ``none``
nor a symmetric algorithm), ``iss`` (the discovery document's issuer; a ``{tenantid}``
template is filled from the token's ``tid``, as Microsoft's multi-tenant issuers are),
``aud`` (our client id), ``exp`` / ``iat`` (a minute of leeway), and ``nonce`` (the one
we sent, so an id_token replayed from another sign-in is refused).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import ssl
from collections.abc import Sequence
from typing import Any

import jwt

from connectors.base import Identity
from connectors.tls import ssl_context_from_env

LEEWAY_SECONDS = 60


class AuthRefused(ValueError):
    """The identity provider or our checks refused a sign-in or a connection.

    ``reason`` is short and safe to show (never a token); ``error`` is the OAuth error
    code when the provider gave one (``invalid_grant``, ``interaction_required`` …).
    """

    def __init__(self, reason: str, *, error: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


def new_verifier() -> str:
    """A PKCE code verifier (RFC 7636 §4.1): 43–128 unreserved characters."""
    return secrets.token_urlsafe(64)[:96]


def challenge_of(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class IdTokenVerifier:
    """Verifies id_tokens of one provider and client against the provider's JWKS."""

    def __init__(self, jwks_uri: str, issuer: str, audience: str, *, timeout: float = 10) -> None:
        self.issuer = issuer
        self.audience = audience
        context = ssl_context_from_env()
        self._jwks = jwt.PyJWKClient(
            jwks_uri,
            cache_keys=True,
            timeout=timeout,
            ssl_context=context if isinstance(context, ssl.SSLContext) else None,
        )

    def verify(
        self, token: str, *, nonce: str | None, email_claims: Sequence[str] = ("email",)
    ) -> Identity:
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self._issuer_for(unverified),
                leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.ExpiredSignatureError as err:
            raise AuthRefused("the sign-in has expired (id_token exp)") from err
        except jwt.InvalidAudienceError as err:
            raise AuthRefused("the id_token was issued to another application (aud)") from err
        except jwt.InvalidIssuerError as err:
            raise AuthRefused("the id_token comes from another issuer (iss)") from err
        except jwt.PyJWKClientError as err:
            raise AuthRefused(f"the id_token's signing key is unknown ({err})") from err
        except jwt.PyJWTError as err:
            raise AuthRefused(f"the id_token is not valid ({type(err).__name__})") from err
        if nonce is None or not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
            raise AuthRefused("the id_token does not answer this sign-in (nonce)")
        email = next((str(claims[c]) for c in email_claims if claims.get(c)), "")
        if "@" not in email:
            raise AuthRefused("the id_token names no e-mail address")
        if claims.get("email_verified") is False:
            raise AuthRefused("the identity provider has not verified this e-mail address")
        return Identity(
            email=email.strip().lower(),
            subject=str(claims["sub"]),
            issuer=str(claims["iss"]),
            name=claims.get("name"),
        )

    def _issuer_for(self, unverified: dict[str, Any]) -> str:
        if "{tenantid}" in self.issuer:
            return self.issuer.replace("{tenantid}", str(unverified.get("tid", "")))
        iss = str(unverified.get("iss", ""))
        # Google's id_tokens say https://accounts.google.com or accounts.google.com.
        if iss and iss == self.issuer.removeprefix("https://"):
            return iss
        return self.issuer
