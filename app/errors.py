"""The error tree of the service; each error knows its HTTP status.

    NextStepError                      500  (a bug or an outage, never bad input)
    ├── ConfigError                    —    start-up refused: names the variable/file/key
    ├── PolicyError(ConfigError)       —    policy file invalid: names file, key, reason
    ├── SchemaOutdated(ConfigError)    —    database schema not at this code's revision
    └── RequestError                   4xx  business errors answered with {"detail": ...}
        ├── Unauthorized               401
        ├── NotFoundError              404
        ├── InvalidRequest             422
        ├── AlreadyExists              409  e.g. a rep with this e-mail is registered
        ├── SlotConflict               409  slot in the past or busy on the rep's calendar
        └── ProviderNotConfigured      422  rep asks for a provider this process lacks
    ProviderFailure                    502/503  the calendar provider failed (retry later)

Connector errors (connectors.base.ProviderError) are translated to these at the service
boundary.
"""

from __future__ import annotations


class NextStepError(Exception):
    """Base of every error raised on purpose by the service."""

    status_code = 500


class ConfigError(NextStepError):
    """A setting, file or key is missing or invalid; the message names it."""


class PolicyError(ConfigError):
    """The policy file is invalid; the message names the file, key and reason."""


class SchemaOutdated(ConfigError):
    """The database schema is not at the revision this code expects."""


class RequestError(NextStepError):
    """A request the service refuses; ``detail`` says what is wrong."""

    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Unauthorized(RequestError):
    status_code = 401


class Forbidden(RequestError):
    """A request that proves nothing, e.g. a webhook matching no live channel: nothing changes."""

    status_code = 403


class NotFoundError(RequestError):
    status_code = 404


class InvalidRequest(RequestError):
    status_code = 422


class ProviderNotConfigured(InvalidRequest):
    status_code = 422


class AlreadyExists(RequestError):
    status_code = 409


class SlotConflict(RequestError):
    status_code = 409


class ProviderFailure(RequestError):
    """The calendar provider could not do what was asked; try again later."""

    status_code = 503

    def __init__(self, detail: str, *, status_code: int = 503) -> None:
        super().__init__(detail)
        self.status_code = status_code
