"""ASGI middleware: a request id on every request, a bound on webhooks in flight, and
limits on request bodies (size everywhere, JSON on the JSON API).

Webhooks are verified and stored before they are acknowledged, one small transaction
each. Under a flood, the transactions queue up for the database threads; past
``NEXTSTEP_WEBHOOK_MAX_INFLIGHT`` requests in flight, a notification is answered
``503`` with ``Retry-After`` *before* anything is read or stored, so memory stays bounded
and nothing is acknowledged that was not stored: the provider retries it (Google and
Graph both retry on 5xx), and the sync it asks for coalesces per calendar anyway.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from typing import Any

from app import logs
from app.ops import metrics

Scope = dict[str, Any]
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# A made request id: 16 random hex digits for this process, then a 16-digit counter —
# unique like a uuid4, without reading the system's random source on every request.
_PROCESS = uuid.uuid4().hex[:16]
_SEQ = itertools.count(1)


class RequestId:
    """Take ``X-Request-ID`` when it is sane, else make one; log lines and the answer carry it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        rid = given if given and _REQUEST_ID.match(given) else f"{_PROCESS}{next(_SEQ):016x}"
        token = logs.request_id.set(rid)

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            logs.request_id.reset(token)


class WebhookAdmission:
    """At most ``limit`` provider notifications in flight; the next one gets 503 + Retry-After."""

    def __init__(
        self, app: Any, *, limit: int, retry_after: int = 1, prefix: str = "/webhooks/"
    ) -> None:
        self.app, self.limit, self.retry_after, self.prefix = app, limit, retry_after, prefix
        self.inflight = 0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        if self.inflight >= self.limit:
            metrics.webhooks_busy[scope["path"]] += 1
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"retry-after", str(self.retry_after).encode()),
                    ],
                }
            )
            await send(
                {
                    "type": "http.response.body",
                    "body": b'{"detail": "too many notifications in flight, retry later"}',
                }
            )
            return
        self.inflight += 1
        metrics.webhooks_inflight = self.inflight
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1
            metrics.webhooks_inflight = self.inflight


JSON_API = ("/v1/", "/sandbox/")


def _header(scope: Scope, name: bytes) -> str | None:
    return next((v.decode("latin-1") for k, v in scope["headers"] if k == name), None)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def _refuse(send: Any, status: int, detail: str) -> None:
    headers = [(b"content-type", b"application/json")]
    if status == 413:  # the rest of the body is not read: this connection cannot go on
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps({"detail": detail}).encode()})


class BodyLimits:
    """Request bodies of at most ``max_bytes`` (else ``413``), JSON on the JSON API (else ``415``).

    A declared ``Content-Length`` over the limit is answered before anything is read; a body
    without one (chunked) is counted as it streams in and answered ``413`` as soon as it
    passes the limit. The body is read here — it is bounded — and handed to the application
    as it came, so no handler ever starts on a body that would be refused half-way.

    On ``/v1/…`` and ``/sandbox/…`` a non-empty body must be ``application/json`` (or a
    ``+json`` type); a body with no Content-Type is refused too (FastAPI would not read it
    as JSON). Provider webhooks keep their own rules: only the size limit applies to them
    (Google posts no body, Graph posts JSON, its validation handshake text/plain or nothing).
    """

    def __init__(self, app: Any, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"request body is larger than {self.max_bytes} bytes"
        declared = _header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_bytes:
            await _refuse(send, 413, too_large)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _refuse(send, 413, too_large)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        content_type = _header(scope, b"content-type")
        if body and scope["path"].startswith(JSON_API) and not _is_json(content_type or ""):
            got = f"got {content_type!r}" if content_type is not None else "none given"
            await _refuse(send, 415, f"Content-Type must be application/json ({got})")
            return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()  # type: ignore[no-any-return]
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
