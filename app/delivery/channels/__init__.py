"""Nudge channels: one module per way of reaching a rep, each declaring its ``name``.

``CHANNELS`` maps each channel's name to its class, for configuration to look up.
"""

from app.nudges.channels.base import (
    Channel,
    DeliveryResult,
    Outbound,
    sign,
    verify_signature,
)
from app.nudges.channels.email import EmailChannel
from app.nudges.channels.slack import SlackChannel
from app.nudges.channels.webhook import WebhookChannel

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
