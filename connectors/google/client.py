"""Google Calendar v3 on the wire: credentials, request execution, retries, error JSON.

This module speaks Google's protocol only. It knows nothing of NextStep's types: callers
get Google's JSON resources back as dicts, and every failure as one ``GoogleApiError``
carrying what Google said (HTTP status, ``errors[0].reason``, ``Retry-After``). The
connector (``connector.py``) maps resources and errors to the provider-neutral vocabulary.

Threading: google-api-python-client is synchronous and its ``httplib2.Http`` is not
thread-safe. Calls run on this client's own ``ThreadPoolExecutor``; each worker thread
owns one raw ``httplib2.Http`` and one discovery ``Resource``, and every request is
executed with a fresh ``AuthorizedHttp`` wrapping the thread's ``Http`` and the rep's
cached credentials (so access tokens are reused across calls and threads).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlparse

import google_auth_httplib2
import httplib2
from google.auth import exceptions as auth_exceptions
from google.oauth2 import service_account
from googleapiclient import discovery
from googleapiclient import errors as api_errors

from connectors.http import RETRYABLE_STATUSES, RetryPolicy, parse_retry_after
from connectors.tls import ca_bundle_file

log = logging.getLogger(__name__)

CALENDAR_EVENTS_SCOPE = "https://www.googleapis.com/auth/calendar.events"
CALENDAR_FREEBUSY_SCOPE = "https://www.googleapis.com/auth/calendar.freebusy"
# The smallest set that covers what we call (from the Calendar v3 discovery document):
# events.list / events.get / events.watch / events.insert / channels.stop all accept
# calendar.events; freeBusy.query does NOT (it takes calendar, calendar.readonly,
# calendar.freebusy or calendar.events.freebusy), hence calendar.freebusy.
SCOPES: tuple[str, ...] = (CALENDAR_EVENTS_SCOPE, CALENDAR_FREEBUSY_SCOPE)

RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})


class GoogleApiError(Exception):
    """A Google call that failed, after any retries.

    ``kind`` is ``"http"`` (Google answered with an error status), ``"auth"`` (the token
    endpoint refused to mint a token: delegation not granted, unknown user, bad key) or
    ``"transport"`` (no usable answer: connection refused, timeout, DNS).
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        status: int | None = None,
        reason: str | None = None,
        domain: str | None = None,
        retry_after: float | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status
        self.reason = reason
        self.domain = domain
        self.retry_after = retry_after
        self.attempts = attempts

    @property
    def retryable(self) -> bool:
        """Whether Google's error guide says to retry with exponential backoff (its rate
        limits also come as 403 with a rate-limit reason)."""
        if self.kind == "transport":
            return True
        if self.kind == "auth":
            return self.status is not None and self.status >= 500
        if self.status in RETRYABLE_STATUSES:
            return True
        return self.status == 403 and self.reason in RATE_LIMIT_REASONS

    def __repr__(self) -> str:
        return (
            f"GoogleApiError(kind={self.kind!r}, status={self.status!r}, "
            f"reason={self.reason!r}, message={self.message!r})"
        )


def loads_lenient(text: str | bytes) -> Any:
    """``json.loads`` that also accepts ``//`` comments and trailing commas.

    Google's documentation samples carry both; real responses are strict JSON, so the
    lenient pass only runs when the strict one fails.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        pass
    out: list[str] = []
    i, n, in_string = 0, len(text), False
    while i < n:
        ch = text[i]
        if in_string:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif ch == "/" and text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif ch == ",":
            j = i + 1
            while j < n and (text[j].isspace() or text.startswith("//", j)):
                if text.startswith("//", j):
                    while j < n and text[j] != "\n":
                        j += 1
                else:
                    j += 1
            if j < n and text[j] in "}]":
                i += 1
                continue
            out.append(ch)
        else:
            out.append(ch)
        i += 1
    return json.loads("".join(out))


def parse_error_body(
    status: int, content: bytes | str | None
) -> tuple[str | None, str | None, str]:
    """Return ``(reason, domain, message)`` from a Google error body.

    Handles the classic ``{"error": {"errors": [{"reason"...}]}}`` shape and the newer
    one with ``"status"`` and ``details[].reason`` (``ErrorInfo``).
    """
    try:
        data = loads_lenient(content or b"")
    except ValueError:
        text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
        return None, None, (text or f"HTTP {status}")[:300]
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        if isinstance(error, str):  # OAuth-style {"error": "...", "error_description": ...}
            return error, None, str(data.get("error_description") or error)
        return None, None, f"HTTP {status}"
    message = str(error.get("message") or f"HTTP {status}")
    errors = error.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        return first.get("reason"), first.get("domain"), str(first.get("message") or message)
    for detail in error.get("details") or ():
        if isinstance(detail, dict) and detail.get("reason"):
            return detail["reason"], detail.get("domain"), message
    return error.get("status"), None, message


class _DelegatedCredentials(service_account.Credentials):
    """Service-account credentials that skip the Regional Access Boundary lookup.

    google-auth >= 2.50 starts a background thread after each refresh that calls
    iamcredentials.googleapis.com. When the Calendar API lives elsewhere (an emulator,
    a private gateway) that call leaks to the public Internet and the thread outlives
    the client, so it is only allowed when the API root is a googleapis.com host.
    """

    _allow_rab_lookup = True

    def _is_regional_access_boundary_lookup_required(self) -> bool:  # pragma: no cover
        if not self._allow_rab_lookup:
            return False
        parent = getattr(super(), "_is_regional_access_boundary_lookup_required", None)
        return bool(parent()) if parent else False

    def _make_copy(self):  # type: ignore[no-untyped-def]
        cred = super()._make_copy()
        cred._allow_rab_lookup = self._allow_rab_lookup
        return cred


class CalendarWireClient:
    """Executes Calendar v3 requests as a delegated rep, with bounded retries.

    A ``Retry-After`` up to ``backoff_cap`` is waited for; a longer one is handed to the
    caller (``GoogleApiError.retry_after``) instead of holding a worker thread.
    """

    def __init__(
        self,
        service_account_file: str | None,
        api_root: str = "https://www.googleapis.com/",
        *,
        user_credentials: Callable[[str], Any] | None = None,
        scopes: Sequence[str] = SCOPES,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        http_timeout: float = 30.0,
        max_workers: int = 8,
        ca_certs: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.retry = RetryPolicy(
            max_attempts=max_attempts,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            max_retry_after=backoff_cap,
        )
        if not api_root.endswith("/"):
            api_root += "/"
        self.api_root = api_root
        self.service_account_file = service_account_file
        self.scopes = tuple(scopes)
        self.http_timeout = http_timeout
        self._sleep = sleep
        # httplib2 ignores the usual CA variables (it reads HTTPLIB2_CA_CERTS or certifi):
        # honour SSL_CERT_FILE / REQUESTS_CA_BUNDLE so a private CA can be trusted.
        self.ca_certs = ca_certs or ca_bundle_file()
        host = urlparse(api_root).hostname or ""
        self._allow_rab_lookup = host == "googleapis.com" or host.endswith(".googleapis.com")
        # Load once so a missing/invalid key fails at construction, not at first call.
        self._base_credentials: _DelegatedCredentials | None = None
        if service_account_file is not None:
            self._base_credentials = _DelegatedCredentials.from_service_account_file(
                service_account_file, scopes=list(self.scopes)
            )
            self._base_credentials._allow_rab_lookup = self._allow_rab_lookup
        self._credentials: dict[str, service_account.Credentials] = {}
        # A person's own grant (connectors/google/oauth.py): credentials per grant, so the
        # access token they refresh is reused across calls and threads.
        self._user_credentials = user_credentials
        self._granted: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self._https: list[httplib2.Http] = []
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="google-cal"
        )
        self._closed = False

    # --- credentials and per-thread transport -----------------------------------------

    def credentials_for(self, subject: str, grant: str | None = None) -> Any:
        """The cached credentials of the rep's own ``grant``, or else the delegated
        credentials impersonating ``subject``."""
        if grant is not None:
            return self._granted_credentials(grant)
        if self._base_credentials is None:
            raise GoogleApiError(
                "token refused: no service account is configured and the rep has not "
                "connected a calendar",
                kind="auth",
                status=401,
                reason="not_connected",
            )
        key = subject.strip().lower()
        with self._lock:
            creds = self._credentials.get(key)
            if creds is None:
                creds = self._base_credentials.with_subject(key)
                self._credentials[key] = creds
            return creds

    def _granted_credentials(self, grant: str) -> Any:
        if self._user_credentials is None:
            raise GoogleApiError(
                "token refused: per-user connections are not configured",
                kind="auth",
                status=401,
                reason="not_configured",
            )
        key = hashlib.sha256(grant.encode("utf-8")).hexdigest()
        with self._lock:
            creds = self._granted.get(key)
            if creds is None:
                try:
                    creds = self._granted[key] = self._user_credentials(grant)
                except Exception as err:  # the issuer's discovery document unreachable
                    raise GoogleApiError(f"sign-in service: {err}", kind="transport") from err
            return creds

    def _thread_service(self) -> tuple[Any, httplib2.Http]:
        service = getattr(self._local, "service", None)
        if service is None:
            # Also carries google-auth's token requests (AuthorizedHttp refreshes through it).
            raw = httplib2.Http(timeout=self.http_timeout, ca_certs=self.ca_certs)
            with self._lock:
                self._https.append(raw)
            service = discovery.build(
                "calendar",
                "v3",
                http=raw,
                static_discovery=True,
                cache_discovery=False,
                client_options={"api_endpoint": f"{self.api_root}calendar/v3/"},
            )
            self._local.service = service
            self._local.http = raw
        return service, self._local.http

    # --- execution ----------------------------------------------------------------------

    async def call(
        self, subject: str, method: str, build: Callable[[Any], Any], grant: str | None = None
    ) -> Any:
        """Run ``build(service).execute()`` as ``subject`` off the event loop, with retries.

        ``method`` names the call for logs (``events.list``).
        """
        if self._closed:
            raise RuntimeError("CalendarWireClient is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, self._call_with_retries, subject, method, build, grant
        )

    def _call_with_retries(
        self, subject: str, method: str, build: Callable[[Any], Any], grant: str | None = None
    ) -> Any:
        def retrying(err: BaseException, attempt: int, delay: float) -> None:
            assert isinstance(err, GoogleApiError)
            log.info(
                "google.call_retry",
                extra={
                    "method": method,
                    "status": err.status,
                    "reason": err.reason,
                    "delay": delay,
                },
            )

        attempts = 0
        try:
            for attempt in self.retry.retrying(
                retryable=lambda err: isinstance(err, GoogleApiError) and err.retryable,
                retry_after=lambda err: (
                    err.retry_after if isinstance(err, GoogleApiError) else None
                ),
                on_retry=retrying,
                sleep=self._sleep,
            ):
                with attempt:
                    attempts += 1
                    return self._call_once(subject, build, grant)
        except GoogleApiError as err:
            err.attempts = attempts
            log.info(
                "google.call_failed",
                extra={
                    "method": method,
                    "status": err.status,
                    "reason": err.reason,
                    "attempts": attempts,
                },
            )
            raise
        raise AssertionError("unreachable: tenacity returns or raises")  # pragma: no cover

    def _call_once(
        self, subject: str, build: Callable[[Any], Any], grant: str | None = None
    ) -> Any:
        service, raw = self._thread_service()
        try:
            # One refresh-and-retry on 401 (a revoked/expired token); a second 401 is final.
            authed = google_auth_httplib2.AuthorizedHttp(
                self.credentials_for(subject, grant), http=raw, max_refresh_attempts=1
            )
            return build(service).execute(http=authed)
        except api_errors.HttpError as err:
            status = int(err.resp.status)
            reason, domain, message = parse_error_body(status, err.content)
            raise GoogleApiError(
                message,
                kind="http",
                status=status,
                reason=reason,
                domain=domain,
                retry_after=parse_retry_after(err.resp.get("retry-after")),
            ) from err
        except auth_exceptions.RefreshError as err:
            raise _refresh_error(err) from err
        except auth_exceptions.TransportError as err:
            raise GoogleApiError(f"token endpoint unreachable: {err}", kind="transport") from err
        except (TimeoutError, OSError, httplib2.HttpLib2Error) as err:
            raise GoogleApiError(f"transport error: {err!r}", kind="transport") from err

    async def aclose(self) -> None:
        """Stop the worker threads and close every HTTP connection."""
        if self._closed:
            return
        self._closed = True
        # A thread of our own, joined here: the loop's default executor would outlive us.
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def shutdown() -> None:
            try:
                self._shutdown()
            finally:
                loop.call_soon_threadsafe(done.set_result, None)

        thread = threading.Thread(target=shutdown, name="google-cal-close")
        thread.start()
        await done
        thread.join()

    def close(self) -> None:
        """Synchronous variant of ``aclose``."""
        self._closed = True
        self._shutdown()

    def _shutdown(self) -> None:
        self._executor.shutdown(wait=True)
        with self._lock:
            https, self._https = self._https, []
        for http in https:
            http.close()


def _refresh_error(err: auth_exceptions.RefreshError) -> GoogleApiError:
    """Translate google-auth's token-endpoint refusal (``unauthorized_client`` …)."""
    data: Any = err.args[1] if len(err.args) > 1 else None
    reason: str | None = None
    message = str(err.args[0]) if err.args else str(err)
    if isinstance(data, dict):
        reason = data.get("error")
        message = str(data.get("error_description") or reason or message)
    elif isinstance(err.args[0] if err.args else None, str) and ":" in err.args[0]:
        reason = err.args[0].split(":", 1)[0].strip() or None
    retryable = bool(getattr(err, "retryable", False))
    return GoogleApiError(
        f"token refused: {message}",
        kind="auth",
        status=503 if retryable else 401,
        reason=reason,
    )
