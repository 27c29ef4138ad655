"""POST once and judge the answer: the HTTP rules shared by the webhook and Slack channels."""

from __future__ import annotations

import json
from typing import Any

import httpx

from app.delivery.channels.base import USER_AGENT, Clock, DeliveryResult, Outbound, SystemClock
from connectors.http import RETRYABLE_STATUSES, parse_retry_after
from connectors.tls import ssl_context_from_env


def new_client(timeout: float) -> httpx.AsyncClient:
    """The client a channel owns: no redirects (a POST must not wander), our User-Agent,
    and the private CA named by the standard variables trusted."""
    return httpx.AsyncClient(
        timeout=timeout,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
        verify=ssl_context_from_env(),  # also REQUESTS_CA_BUNDLE, which httpx ignores
    )


def display_url(url: httpx.URL, *, keep_path: bool = True) -> str:
    """The URL as it may appear in logs: no credentials, no query (tokens hide there)."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    shown = f"{url.scheme}://{host}"
    if url.port is not None:
        shown += f":{url.port}"
    return shown + (url.path if keep_path else "")


def retry_after(value: str | None, clock: Clock) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delay-seconds or HTTP-date), if any."""
    return parse_retry_after(value, now=clock.now())


def _excerpt(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    return f": {text[:200]}" if text else ""


def judge(response: httpx.Response, *, what: str, clock: Clock) -> DeliveryResult:
    """Turn a receiver's answer into a result; ``what`` names the receiver in ``detail``."""
    status = response.status_code
    if 200 <= status < 300:
        return DeliveryResult(ok=True, retryable=False, detail=f"{what} answered {status}")
    detail = f"{what} answered {status}{_excerpt(response)}"
    if status in RETRYABLE_STATUSES or status >= 500:  # busy, slow or briefly broken
        return DeliveryResult(
            ok=False,
            retryable=True,
            detail=detail,
            retry_after=retry_after(response.headers.get("Retry-After"), clock),
        )
    if 300 <= status < 400:
        location = response.headers.get("Location")
        try:
            target = display_url(response.url.join(location)) if location else "?"
        except httpx.InvalidURL:
            target = "an invalid URL"
        detail += f" (redirects to {target}; not followed)"
    # Anything else is a problem with the request or the address: repeating it cannot help.
    return DeliveryResult(ok=False, retryable=False, detail=detail)


async def post(
    client: httpx.AsyncClient,
    url: httpx.URL,
    *,
    body: bytes,
    headers: dict[str, str],
    what: str,
    clock: Clock,
) -> DeliveryResult:
    """POST ``body`` and return the judged result; transport failures are returned too."""
    try:
        # Set per request too, so a client handed in by the caller still names us.
        response = await client.post(
            url, content=body, headers={"User-Agent": USER_AGENT, **headers}
        )
    except httpx.TimeoutException as err:
        return DeliveryResult(
            ok=False, retryable=True, detail=f"{what} timed out ({type(err).__name__})"
        )
    except httpx.UnsupportedProtocol as err:
        return DeliveryResult(ok=False, retryable=False, detail=f"{what} unreachable: {err}")
    except httpx.TransportError as err:
        reason = str(err) or type(err).__name__
        return DeliveryResult(ok=False, retryable=True, detail=f"{what} unreachable: {reason}")
    except httpx.HTTPError as err:  # e.g. an answer that cannot be decoded
        return DeliveryResult(ok=False, retryable=True, detail=f"{what} failed: {err}")
    return judge(response, what=what, clock=clock)


def checked_url(url: str, *, setting: str) -> httpx.URL:
    """Parse an http(s) URL given in configuration, or raise ValueError naming the setting."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as err:
        raise ValueError(f"{setting}: invalid URL {url!r}: {err}") from err
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{setting}: expected an http:// or https:// URL, got {url!r}")
    return parsed


class HttpChannel:
    """What every channel that speaks HTTP to one place holds: the client (its own unless one
    is given, then closed by ``aclose``), the clock for ``Retry-After``, and how it is named
    in logs and results (``what``) — the URL without credentials or query."""

    def __init__(
        self,
        url: httpx.URL,
        label: str,
        timeout: float,
        client: httpx.AsyncClient | None,
        clock: Clock | None,
        *,
        keep_path: bool = False,
    ) -> None:
        self._clock = clock or SystemClock()
        self._owns_client = client is None
        self._client = client if client is not None else new_client(timeout)
        self._shown = display_url(url, keep_path=keep_path)
        self._what = f"{label} {self._shown}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._shown!r})"

    async def aclose(self) -> None:
        """Close the HTTP client if this channel created it."""
        if self._owns_client:
            await self._client.aclose()

    async def _post_json(
        self, url: httpx.URL, doc: Any, headers: dict[str, str] | None = None
    ) -> DeliveryResult:
        """POST ``doc`` as UTF-8 JSON once and return the judged result."""
        return await post(
            self._client,
            url,
            body=json.dumps(doc, ensure_ascii=False).encode("utf-8"),
            headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})},
            what=self._what,
            clock=self._clock,
        )


class JsonWebhookChannel(HttpChannel):
    """Post each nudge, rendered as one JSON document, to one incoming-webhook URL
    (Slack's and Teams' webhooks); a subclass names its setting and label and renders."""

    setting: str  # the configuration that gives the URL, named when it is invalid
    label: str  # how the webhook is named in logs and results

    def __init__(
        self,
        webhook_url: str,
        *,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._url = checked_url(webhook_url, setting=self.setting)
        super().__init__(self._url, self.label, timeout, client, clock)

    def render(self, out: Outbound) -> dict[str, Any]:
        raise NotImplementedError

    async def send(self, out: Outbound) -> DeliveryResult:
        """Post the rendered nudge once; the result says whether a retry can help."""
        return await self._post_json(self._url, self.render(out))
