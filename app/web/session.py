"""Who is looking: signed session cookies, CSRF tokens, the flow-binding cookie.

- The session cookie holds ``{"e": e-mail, "x": expiry}`` and an HMAC of it made with the
  key ring (``rt.keys.sign``, purpose ``web.session``): tampered with, expired, or signed
  with a key no longer in the ring, it is no session at all. ``HttpOnly``, ``Secure``,
  ``SameSite=Lax``, ``Path=/``.
- The browser cookie is a random value set on the first page; every form carries
  ``csrf`` = its HMAC (purpose ``web.csrf``), and every POST is refused (403) unless the
  field matches the cookie — a page of another site can neither read the cookie nor forge
  the field. The same cookie binds an OAuth flow to the browser that started it (its hash
  is kept with the ``state``), so a callback opened in another browser is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from app.runtime import Runtime

SESSION_COOKIE = "nextstep_session"
BROWSER_COOKIE = "nextstep_browser"
MAX_FORM_BYTES = 16384


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error):
        return None


def _cookie(response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="lax"
    )


# --- the session -------------------------------------------------------------------------


def session_value(rt: Runtime, email: str, now: datetime) -> str:
    body = json.dumps(
        {"e": email.lower(), "x": int(now.timestamp()) + rt.settings.session_seconds},
        separators=(",", ":"),
    ).encode()
    return f"{_b64(body)}.{_b64(rt.keys.sign(body, purpose='web.session'))}"


def signed_in_email(rt: Runtime, request: Request, now: datetime) -> str | None:
    """The e-mail of a valid session cookie, else None (tampered, expired, absent)."""
    value = request.cookies.get(SESSION_COOKIE, "")
    body_text, _, sig_text = value.partition(".")
    body, sig = _unb64(body_text), _unb64(sig_text)
    if not body or not sig or not rt.keys.verify(body, sig, purpose="web.session"):
        return None
    try:
        data = json.loads(body)
        email, expiry = str(data["e"]), int(data["x"])
    except (ValueError, KeyError, TypeError):
        return None
    return email if expiry > now.timestamp() else None


def start_session(rt: Runtime, response: Response, email: str, now: datetime) -> None:
    _cookie(response, SESSION_COOKIE, session_value(rt, email, now), rt.settings.session_seconds)


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="lax")


# --- the browser cookie and CSRF ---------------------------------------------------------


@dataclass
class Browser:
    """The browser cookie of this request (a new one when it had none)."""

    value: str
    new: bool

    @property
    def binding(self) -> str:
        """What an OAuth flow started in this browser is bound to (never the value)."""
        return hashlib.sha256(self.value.encode()).hexdigest()

    def keep(self, response: Response) -> None:
        if self.new:
            _cookie(response, BROWSER_COOKIE, self.value, None)


def browser(request: Request) -> Browser:
    value = request.cookies.get(BROWSER_COOKIE, "")
    if len(value) >= 32 and value.isascii():
        return Browser(value, new=False)
    return Browser(secrets.token_urlsafe(32), new=True)


def csrf_token(rt: Runtime, who: Browser) -> str:
    return _b64(rt.keys.sign(who.value.encode(), purpose="web.csrf"))


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (first value of each field)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    return {k: v[0] for k, v in parse_qs(text).items()}


def csrf_ok(rt: Runtime, request: Request, form: dict[str, str]) -> bool:
    """Whether a POST carries the CSRF field of this browser's cookie."""
    value = request.cookies.get(BROWSER_COOKIE, "")
    if len(value) < 32:
        return False
    expected = _b64(rt.keys.sign(value.encode(), purpose="web.csrf"))
    return hmac.compare_digest(form.get("csrf", ""), expected)
