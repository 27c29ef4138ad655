"""Microsoft 365 calendars through Microsoft Graph; see connector.py for the API."""

from connectors.microsoft.connector import MicrosoftConnector

__all__ = ["MicrosoftConnector"]
