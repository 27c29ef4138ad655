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
from app.delivery.channels.hubspot import HubSpotChannel
from app.delivery.channels.salesforce import SalesforceChannel
from app.delivery.channels.slack import SlackBotChannel, SlackChannel
from app.delivery.channels.teams import TeamsChannel
from app.delivery.channels.webhook import WebhookChannel

CHANNELS: dict[str, type[Channel]] = {
    WebhookChannel.name: WebhookChannel,
    EmailChannel.name: EmailChannel,
    SlackChannel.name: SlackChannel,
    SlackBotChannel.name: SlackBotChannel,
    TeamsChannel.name: TeamsChannel,
    HubSpotChannel.name: HubSpotChannel,
    SalesforceChannel.name: SalesforceChannel,
}

__all__ = [
    "CHANNELS",
    "Channel",
    "DeliveryResult",
    "EmailChannel",
    "HubSpotChannel",
    "SalesforceChannel",
    "Outbound",
    "SlackBotChannel",
    "SlackChannel",
    "TeamsChannel",
    "WebhookChannel",
    "sign",
    "verify_signature",
]
