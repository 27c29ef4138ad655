"""The error tree of the service; each error knows its HTTP status.

    NextStepError                      500  a bug or an outage, never bad input
    ├── ConfigError                    —    start-up refused: names the variable/file/key
    │   └── SchemaOutdated             —    database schema not at this code's revision
    └── RequestError                   400  business errors answered with {"detail": ...}
        ├── Unauthorized               401  no or a wrong API key
        ├── Forbidden                  403  a webhook that matches no live channel
        ├── NotFoundError              404  unknown id
        ├── AlreadyExists              409  e.g. a rep with this e-mail is registered
        ├── SlotConflict               409  slot in the past or busy on the rep's calendar
        ├── InvalidRequest             422  a body or query value pydantic cannot judge
        │   └── ProviderNotConfigured  422  rep asks for a provider this process lacks
        └── ProviderFailure            502/503  the calendar provider failed (retry later)

    PolicyError (policies.errors, a ValueError)  —  start-up refused: the policy file is
                                                    invalid; names file, key and reason

``PolicyError`` is defined in policies/, which never imports the service; it is the very
class named here, so ``app.errors.PolicyError`` and ``policies.errors.PolicyError`` are
one. The command line reports it like a ``ConfigError``. Connector errors
(``connectors.base.ProviderError``) are translated to ``ProviderFailure`` at the service
boundary.
"""

from __future__ import annotations

from policies.errors import PolicyError

__all__ = [
    "AlreadyExists",
    "ConfigError",
    "Forbidden",
    "InvalidRequest",
    "NextStepError",
    "NotFoundError",
    "PolicyError",
    "ProviderFailure",
    "ProviderNotConfigured",
    "RequestError",
    "SchemaOutdated",
    "SlotConflict",
    "Unauthorized",
]


class NextStepError(Exception):
    """Base of every error raised on purpose by the service."""

    status_code = 500


class ConfigError(NextStepError):
    """A setting, file or key is missing or invalid; the message names it."""


class SchemaOutdated(ConfigError):
    """The database schema is not at the revision this code expects."""


class RequestError(NextStepError):
    """A request the service refuses; ``detail`` says what is wrong."""

    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Unauthorized(RequestError):
    """No API key, or not one of NEXTSTEP_API_KEYS."""

    status_code = 401


class Forbidden(RequestError):
    """A request that proves nothing, e.g. a webhook matching no live channel: nothing changes."""

    status_code = 403


class NotFoundError(RequestError):
    """No such id."""

    status_code = 404


class AlreadyExists(RequestError):
    """The thing to create exists already (a rep with this e-mail)."""

    status_code = 409


class SlotConflict(RequestError):
    """The follow-up slot is in the past, off the horizon or busy on the rep's calendar."""

    status_code = 409


class Conflict(RequestError):
    """The request contradicts the service's state (the trial clock moved backwards)."""

    status_code = 409


class InvalidRequest(RequestError):
    """A value the body's schema cannot judge alone (a time zone, a state name, …)."""

    status_code = 422


class ProviderNotConfigured(InvalidRequest):
    """The rep asks for a provider this process is not configured for."""

    status_code = 422


class ProviderFailure(RequestError):
    """The calendar provider could not do what was asked; try again later."""

    status_code = 503

    def __init__(self, detail: str, *, status_code: int = 503) -> None:
        super().__init__(detail)
        self.status_code = status_code
