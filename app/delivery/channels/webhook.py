"""The contract's channel: every nudge POSTed as signed JSON to the CRM's webhook URL.

The body is serialised once and the signature covers exactly those bytes, so a receiver
verifies the raw body it got, never a re-serialisation. The nudge id rides along as
``X-NextStep-Nudge-Id`` and ``Idempotency-Key`` and is the same on every retry.

Two signatures over the same bytes and the same (real) time: ``X-NextStep-Signature`` is
exactly Stripe's scheme (``t=…,v1=…``: any Stripe verifier checks it with the secret), and
``webhook-id``/``webhook-timestamp``/``webhook-signature`` are Standard Webhooks' (its
libraries check them with the secret's bytes, or with the secret itself when it is a
``whsec_…`` one).
"""

from __future__ import annotations

import math
from typing import ClassVar

import httpx

from app.delivery.channels import _http
from app.delivery.channels.base import (
    IDEMPOTENCY_HEADER,
    NUDGE_ID_HEADER,
    SIGNATURE_HEADER,
    Clock,
    DeliveryResult,
    Outbound,
    encode_payload,
    sign,
    standard_headers,
)


class WebhookChannel(_http.HttpChannel):
    """POST each nudge, signed with HMAC-SHA256, to one URL."""

    name: ClassVar[str] = "webhook"

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not secret:
            raise ValueError("NEXTSTEP_NUDGE_WEBHOOK_SECRET: a webhook needs a non-empty secret")
        self._url = _http.checked_url(url, setting="NEXTSTEP_NUDGE_WEBHOOK_URL")
        self._secret = secret
        super().__init__(self._url, "webhook", timeout, client, clock, keep_path=True)

    async def send(self, out: Outbound) -> DeliveryResult:
        """POST the nudge payload once; the result says whether a retry can help."""
        body = encode_payload(out.payload)
        timestamp = math.floor(self._clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, self._secret, timestamp),
            NUDGE_ID_HEADER: out.nudge_id,
            IDEMPOTENCY_HEADER: out.nudge_id,
            # The same body signed the Standard Webhooks way, for receivers with that library.
            **standard_headers(body, self._secret, msg_id=out.nudge_id, timestamp=timestamp),
        }
        return await _http.post(
            self._client, self._url, body=body, headers=headers, what=self._what, clock=self._clock
        )
