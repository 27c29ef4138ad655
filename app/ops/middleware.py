"""ASGI middleware: a request id on every request, and a bound on webhooks in flight.

Webhooks are verified and stored before they are acknowledged, one small transaction
each. Under a flood, the transactions queue up for the database threads; past
``NEXTSTEP_WEBHOOK_MAX_INFLIGHT`` requests in flight, a notification is answered
``503`` with ``Retry-After`` *before* anything is read or stored, so memory stays bounded
and nothing is acknowledged that was not stored: the provider retries it (Google and
Graph both retry on 5xx), and the sync it asks for coalesces per calendar anyway.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from app import logs
from app.ops import metrics

Scope = dict[str, Any]
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestId:
    """Take ``X-Request-ID`` when it is sane, else make one; log lines and the answer carry it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
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
