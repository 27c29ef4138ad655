"""The provider registry: the one module of ``app/`` that names a provider package.

Everything else in ``app/`` reaches a calendar provider through here, by the name a rep
row carries, and speaks to it only through the ``CalendarProvider`` Protocol
(``connectors/base.py``), where what differs between providers is declared:

- ``build_providers``: the providers this process is configured for, from Settings;
- ``counted``: a provider whose calls and errors are counted for ``/metrics``
  (``Runtime.provider(name)`` is the call the rest of the service uses);
- ``webhook_readers``: how each provider's webhook requests are read, for the
  ``/webhooks/{name}...`` endpoints; these exist whether or not the provider is
  configured (its notifications are then refused, as no channel matches);
- ``KNOWN`` / ``ENABLED_BY``: every provider this code speaks to, and the settings that
  configure each;
- ``sandbox``: the in-process sandbox, whose calendars the demo and ``/sandbox`` play with.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Mapping
from functools import wraps
from typing import Any, cast

from app.clock import Clock
from app.config import Settings
from app.errors import ProviderNotConfigured
from connectors.base import CalendarProvider, UserGrants, UserOAuth, Webhooks
from connectors.google.connector import GoogleConnector
from connectors.google.oauth import GoogleOAuth
from connectors.microsoft import MicrosoftConnector
from connectors.microsoft.oauth import MicrosoftOAuth
from connectors.sandbox.provider import SandboxProvider

provider_calls: Counter[tuple[str, str]] = Counter()  # (provider, operation), for /metrics
provider_errors: Counter[tuple[str, str, str]] = Counter()  # (provider, operation, error)

KNOWN: tuple[type[CalendarProvider], ...] = (SandboxProvider, GoogleConnector, MicrosoftConnector)
"""Every provider this code can speak to, configured or not."""

ENABLED_BY: dict[str, str] = {
    SandboxProvider.name: "NEXTSTEP_SANDBOX=true",
    GoogleConnector.name: (
        "NEXTSTEP_GOOGLE_SERVICE_ACCOUNT_FILE, or NEXTSTEP_GOOGLE_OAUTH_CLIENT_ID and "
        "NEXTSTEP_GOOGLE_OAUTH_CLIENT_SECRET"
    ),
    MicrosoftConnector.name: (
        "NEXTSTEP_MS_TENANT_ID, NEXTSTEP_MS_CLIENT_ID and NEXTSTEP_MS_CLIENT_SECRET, or "
        "NEXTSTEP_MS_OAUTH_CLIENT_ID and NEXTSTEP_MS_OAUTH_CLIENT_SECRET"
    ),
}
"""The settings that configure each known provider, by name (for messages naming them)."""

Sandbox = SandboxProvider
"""The sandbox provider's type, for code that plays the outside world (demo, /sandbox)."""


def build_providers(settings: Settings, clock: Clock) -> dict[str, CalendarProvider]:
    """The providers this process is configured for, by name.

    ``ValueError`` (an unreadable key file or CA bundle, named in the message) when a
    configured provider cannot be built.
    """
    providers: dict[str, CalendarProvider] = {}
    if settings.sandbox:
        providers[SandboxProvider.name] = SandboxProvider(clock=clock.now)
    if settings.google_enabled:
        key_file = settings.google_service_account_file
        providers[GoogleConnector.name] = GoogleConnector(
            str(key_file) if key_file is not None else None,
            settings.google_api_root,
            channel_ttl_seconds=settings.google_channel_ttl_seconds,
            user_oauth=(
                GoogleOAuth(
                    settings.google_oauth_client_id or "",
                    settings.google_oauth_client_secret or "",
                    issuer=settings.google_oauth_issuer,
                )
                if settings.google_user_oauth
                else None
            ),
        )
    if settings.microsoft_enabled:
        providers[MicrosoftConnector.name] = MicrosoftConnector(
            settings.ms_tenant_id,
            settings.ms_client_id,
            settings.ms_client_secret,
            authority=settings.ms_authority,
            graph_root=settings.graph_api_root,
            user_oauth=(
                MicrosoftOAuth(
                    settings.ms_oauth_client_id or "",
                    settings.ms_oauth_client_secret or "",
                    authority=settings.ms_oauth_authority,
                )
                if settings.microsoft_user_oauth
                else None
            ),
        )
    return providers


def user_oauth(providers: Mapping[str, CalendarProvider]) -> dict[str, UserOAuth]:
    """The identity providers people sign in with and reps connect through, by name."""
    out: dict[str, UserOAuth] = {}
    for name, provider in providers.items():
        oauth = provider.user_oauth if isinstance(provider, UserGrants) else None
        if oauth is not None:
            out[name] = oauth
    return out


def user_grants(providers: Mapping[str, CalendarProvider]) -> list[UserGrants]:
    """Providers that may hand back a rep's changed grant (``set_grant_handler``)."""
    return [p for p in providers.values() if isinstance(p, UserGrants)]


def webhook_readers() -> dict[str, Webhooks]:
    """Each provider's webhook reader by provider name (those that take webhooks at all)."""
    return {kind.name: kind.webhooks for kind in KNOWN if kind.webhooks is not None}


class CountedProvider:
    """A calendar provider whose coroutine methods count their calls and errors."""

    def __init__(self, name: str, inner: CalendarProvider) -> None:
        self._name, self._inner = name, inner

    def __getattr__(self, attr: str) -> Any:
        # Looked up on every call, so a method replaced on the provider (tests) is used.
        value = getattr(self._inner, attr)
        if not inspect.iscoroutinefunction(value):
            return value
        name = self._name

        @wraps(value)
        async def counted(*args: Any, **kwargs: Any) -> Any:
            provider_calls[(name, attr)] += 1
            try:
                return await value(*args, **kwargs)
            except Exception as err:
                provider_errors[(name, attr, type(err).__name__)] += 1
                raise

        return counted


def counted(
    providers: Mapping[str, CalendarProvider], name: str, cache: dict[str, CountedProvider]
) -> CalendarProvider:
    """Provider ``name``, its calls counted (one wrapper per name, kept in ``cache``).

    ``ProviderNotConfigured`` when this process has no such provider.
    """
    try:
        provider = providers[name]
    except KeyError:
        raise ProviderNotConfigured(
            f"provider {name!r} is not configured on this server "
            f"(configured: {', '.join(sorted(providers)) or 'none'})"
        ) from None
    wrapped = cache.get(name)
    if wrapped is None or wrapped._inner is not provider:
        wrapped = cache[name] = CountedProvider(name, provider)
    return cast(CalendarProvider, wrapped)


def sandbox(providers: Mapping[str, CalendarProvider]) -> SandboxProvider:
    """The in-process sandbox provider; ``ProviderNotConfigured`` without NEXTSTEP_SANDBOX."""
    provider = providers.get(SandboxProvider.name)
    if not isinstance(provider, SandboxProvider):
        raise ProviderNotConfigured(
            "the sandbox provider is not configured on this server (NEXTSTEP_SANDBOX=true)"
        )
    return provider
