"""Microsoft Graph on the wire: MSAL app tokens, one httpx client, retries, error JSON.

This module speaks Graph only and never imports ``app`` nor our calendar types; the
connector maps what it returns. Errors leave as:

    GraphError            a Graph HTTP error: status, Graph ``error.code``, message,
    |                     ``innerError``, Retry-After (seconds, may be fractional)
    GraphTokenError       MSAL could not get an app token (``invalid_client`` ...)
    GraphTransportError   network failure after the retries

Retries (``connectors.http.RetryPolicy``): the retryable statuses (429, 503 ...) wait for
``Retry-After`` (fractional allowed) when given, unless it is longer than
``max_retry_after`` (then the caller gets it); otherwise they and network errors back off
exponentially with full jitter (``uniform(0, min(cap, base * 2**n))``); ``max_attempts``
bounds every call. A 401 from Graph drops MSAL's cached app token once and retries with a
fresh one. Token endpoint failures are not retried here.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import msal
import requests
import requests.adapters

from connectors.http import RETRYABLE_STATUSES, RetryPolicy, parse_retry_after
from connectors.microsoft.oauth import DelegatedTokenError, MicrosoftOAuth
from connectors.oidc import AuthRefused
from connectors.tls import ca_bundle_file, ssl_context_from_env

log = logging.getLogger(__name__)

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
MAX_CONCURRENT_PER_MAILBOX = 4


class GraphError(Exception):
    """An HTTP error answered by Graph, with its parsed ``{"error": {...}}`` body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        inner: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"Graph {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.inner = dict(inner or {})
        self.retry_after = retry_after
        self.request_id = request_id

    @property
    def retryable(self) -> bool:
        """Worth another try soon: throttled or a transient server error."""
        return self.status in RETRYABLE_STATUSES

    @classmethod
    def from_response(cls, response: httpx.Response) -> GraphError:
        """Parse Graph's error JSON; tolerate bodies that are not JSON."""
        code, message, inner = f"HTTP{response.status_code}", response.reason_phrase, {}
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            err = body["error"]
            code = str(err.get("code") or code)
            message = str(err.get("message") or message)
            raw_inner = err.get("innerError") or err.get("innererror") or {}
            inner = raw_inner if isinstance(raw_inner, dict) else {}
        return cls(
            response.status_code,
            code,
            message,
            inner=inner,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            request_id=response.headers.get("request-id") or inner.get("request-id"),
        )


class GraphTokenError(Exception):
    """MSAL returned an error instead of a token (``error`` is the OAuth error code)."""

    def __init__(self, error: str, description: str = "") -> None:
        super().__init__(f"token request failed: {error}: {description}".rstrip(": "))
        self.error = error
        self.description = description


class GraphTransportError(Exception):
    """The request never got an HTTP answer (connect/read failure, TLS error).

    ``retryable`` is true for a Graph request, false for the token endpoint (MSAL has
    already tried there).
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class GraphResponse:
    status: int
    body: Any
    headers: Mapping[str, str]


class GraphClient:
    """One app identity (tenant, client id, secret) talking to one Graph root."""

    def __init__(
        self,
        tenant_id: str | None,
        client_id: str | None,
        client_secret: str | None,
        *,
        user_oauth: MicrosoftOAuth | None = None,
        authority: str | None = None,
        graph_root: str = "https://graph.microsoft.com/v1.0",
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        max_retry_after: float = 60.0,
        timeout: float = 30.0,
        max_concurrent_per_mailbox: int = MAX_CONCURRENT_PER_MAILBOX,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry = RetryPolicy(
            max_attempts=max_attempts,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            max_retry_after=max_retry_after,
        )
        self.tenant_id = tenant_id
        self.client_id = client_id
        self._client_secret = client_secret
        self.user_oauth = user_oauth
        # Called with (rep id, new grant) when a rep's token cache changed (rotation).
        self.grant_handler: Callable[[str, str], Awaitable[None]] | None = None
        default_authority = f"{DEFAULT_AUTHORITY_HOST}/{tenant_id or 'organizations'}"
        self.authority = (authority or default_authority).rstrip("/")
        # Any other authority than the default (sovereign cloud, private or test
        # authority): Microsoft's instance discovery does not know it, so it is off.
        self.custom_authority = self.authority.lower() != default_authority.lower()
        self.graph_root = graph_root.rstrip("/")
        self.timeout = timeout
        self._sleep = sleep
        self._max_per_mailbox = max_concurrent_per_mailbox
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._msal_app: msal.ConfidentialClientApplication | None = None
        self._requests_session: requests.Session | None = None
        self._msal_lock = threading.Lock()
        # requests reads REQUESTS_CA_BUNDLE itself but not SSL_CERT_FILE: one file for it.
        self._ca_file = ca_bundle_file()
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            verify=ssl_context_from_env(),
            headers={"Accept": "application/json"},
            transport=transport,
        )

    # --- tokens ---------------------------------------------------------------------

    def _app(self) -> msal.ConfidentialClientApplication:
        # Built lazily and off the event loop: MSAL fetches the OpenID configuration in
        # its constructor, synchronously.
        if self._msal_app is None:
            if self._requests_session is None:
                # Our own session, so aclose() can close it even when MSAL's constructor
                # failed (it discovers the tenant there).
                session = requests.Session()
                session.mount("https://", requests.adapters.HTTPAdapter(max_retries=1))
                defaults: dict[str, Any] = {"timeout": self.timeout}
                # requests 2.34 did not apply Session.verify here: pass it per request.
                if self._ca_file:
                    defaults["verify"] = self._ca_file
                session.request = functools.partial(  # type: ignore[method-assign]
                    session.request, **defaults
                )
                self._requests_session = session
            kwargs: dict[str, Any] = {
                "client_credential": self._client_secret,
                "authority": self.authority,
                "http_client": self._requests_session,
            }
            if self.custom_authority:
                kwargs["instance_discovery"] = False
                kwargs["validate_authority"] = False
            self._msal_app = msal.ConfidentialClientApplication(self.client_id, **kwargs)
        return self._msal_app

    def _acquire_token_sync(self, force_refresh: bool) -> str:
        if not (self.client_id and self._client_secret):
            raise GraphTokenError(
                "not_connected",
                "no app registration with application permissions is configured and the rep "
                "has not connected a calendar",
            )
        with self._msal_lock:
            try:
                app = self._app()
                if force_refresh:
                    app.remove_tokens_for_client()
                # acquire_token_for_client serves from MSAL's cache until near expiry.
                result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
            except ValueError as err:  # authority discovery refused (unknown tenant ...)
                raise GraphTokenError("invalid_authority", str(err)) from err
            except Exception as err:  # requests' network errors inside MSAL
                raise GraphTransportError(f"token endpoint unreachable: {err}") from err
        if not result or "access_token" not in result:
            result = result or {}
            raise GraphTokenError(
                str(result.get("error") or "no_token"), str(result.get("error_description") or "")
            )
        return str(result["access_token"])

    async def token(
        self, *, force_refresh: bool = False, delegated: tuple[str, str] | None = None
    ) -> str:
        """An app-only access token for Graph, from MSAL's cache when still valid; with
        ``delegated`` = (rep id, grant), the rep's own token (``acquire_token_silent``)."""
        if delegated is None:
            return await asyncio.to_thread(self._acquire_token_sync, force_refresh)
        if self.user_oauth is None:
            raise GraphTokenError("not_configured", "per-user connections are not configured")
        rep_id, grant = delegated
        try:
            token, new_grant = await asyncio.to_thread(
                self.user_oauth.access_token, rep_id, grant, force_refresh=force_refresh
            )
        except DelegatedTokenError as err:
            raise GraphTokenError(err.error, err.description) from err
        except AuthRefused as err:
            raise GraphTokenError("temporarily_unavailable", err.reason) from err
        except requests.RequestException as err:
            raise GraphTransportError(f"token endpoint unreachable: {err}") from err
        if new_grant is not None and self.grant_handler is not None:
            await self.grant_handler(rep_id, new_grant)
        return token

    # --- requests -------------------------------------------------------------------

    def url(self, path_or_url: str) -> str:
        """Absolute URL for a Graph path; absolute links must stay under graph_root."""
        if path_or_url.startswith(("https://", "http://")):
            root = urlsplit(self.graph_root)
            target = urlsplit(path_or_url)
            if (target.scheme, target.netloc) != (root.scheme, root.netloc):
                raise ValueError(f"link {path_or_url!r} is not under {self.graph_root}")
            return path_or_url
        return f"{self.graph_root}/{path_or_url.lstrip('/')}"

    def _semaphore(self, mailbox: str | None) -> asyncio.Semaphore | None:
        if mailbox is None:
            return None
        key = mailbox.strip().lower()
        sem = self._semaphores.get(key)
        if sem is None:
            sem = self._semaphores[key] = asyncio.Semaphore(self._max_per_mailbox)
        return sem

    async def request(
        self,
        method: str,
        path_or_url: str,
        *,
        mailbox: str | None = None,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        delegated: tuple[str, str] | None = None,
    ) -> GraphResponse:
        """Send one Graph call with retries; raise GraphError on a final 4xx/5xx.

        ``delegated`` = (rep id, grant): the call is made with the rep's own token."""
        url = self.url(path_or_url)
        sem = self._semaphore(mailbox)
        if sem is None:
            return await self._request(method, url, params, json, headers, delegated)
        async with sem:
            return await self._request(method, url, params, json, headers, delegated)

    async def _request(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        json: Any,
        headers: Mapping[str, str] | None,
        delegated: tuple[str, str] | None = None,
    ) -> GraphResponse:
        refreshed = False

        async def send() -> httpx.Response:
            nonlocal refreshed
            while True:
                token = await self.token(force_refresh=False, delegated=delegated)
                req_headers = {"Authorization": f"Bearer {token}", **(headers or {})}
                try:
                    resp = await self._http.request(
                        method, url, params=params, json=json, headers=req_headers
                    )
                except httpx.TransportError as err:
                    raise GraphTransportError(f"{method} {url}: {err!r}", retryable=True) from err
                if resp.status_code == 401 and not refreshed:
                    # Token revoked or rotated early: drop MSAL's cached token once.
                    refreshed = True
                    await self.token(force_refresh=True, delegated=delegated)
                    continue
                if resp.status_code >= 400:
                    raise GraphError.from_response(resp)
                return resp

        def retrying(err: BaseException, attempt: int, wait: float) -> None:
            if isinstance(err, GraphError):
                log.info(
                    "sync.microsoft.retry",
                    extra={"status": err.status, "attempt": attempt, "wait": wait},
                )
            else:
                log.warning(
                    "sync.microsoft.transport_retry", extra={"url": url, "attempt": attempt}
                )

        async for attempt in self.retry.async_retrying(
            retryable=lambda err: (
                isinstance(err, GraphError | GraphTransportError) and err.retryable
            ),
            retry_after=lambda err: err.retry_after if isinstance(err, GraphError) else None,
            on_retry=retrying,
            sleep=self._sleep,
        ):
            with attempt:
                resp = await send()
        body: Any = None
        if resp.content:
            try:
                body = resp.json()
            except ValueError:
                body = resp.text
        return GraphResponse(resp.status_code, body, resp.headers)

    async def aclose(self) -> None:
        """Close the HTTP connection pools (httpx, and MSAL's requests session)."""
        await self._http.aclose()
        with self._msal_lock:
            session, self._requests_session = self._requests_session, None
            self._msal_app = None
        if session is not None:
            await asyncio.to_thread(session.close)
