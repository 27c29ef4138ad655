"""Nudge channels: one module per way of reaching a rep, each declaring its ``name``.

``CHANNELS`` maps each channel's name to its class, for configuration to look up.
"""

from app.delivery.channels.base import (
    Channel,
    DeliveryResult,
    Outbound,
    sign,
    verify_signature,
)
from app.delivery.channels.email import EmailChannel
from app.delivery.channels.slack import SlackChannel
from app.delivery.channels.webhook import WebhookChannel

CHANNELS: dict[str, type[Channel]] = {
    WebhookChannel.name: WebhookChannel,
    EmailChannel.name: EmailChannel,
    SlackChannel.name: SlackChannel,
}

__all__ = [
    "CHANNELS",
    "Channel",
    "DeliveryResult",
    "EmailChannel",
    "Outbound",
    "SlackChannel",
    "WebhookChannel",
    "sign",
    "verify_signature",
]
