"""Settings: one pydantic-settings class, prefix NEXTSTEP_, fails fast naming the variable.

Every bad value stops start-up with one line ``NEXTSTEP_X: reason`` (``load_settings``
raises ConfigError; ``nextstep serve``/``migrate`` print it). What is allowed but
probably a mistake — a variable NextStep does not know, no internal domains — is a
start-up warning instead (``startup_warnings``).
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from app.errors import ConfigError
from app.secrets import decode_keys

CSV = Annotated[tuple[str, ...], NoDecode]

MAX_SECONDS = 366 * 86400
"""The longest any duration setting may be: a year keeps every ``now + duration`` far
from the end of the calendar (year 9999), and no operator means more."""

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def _seconds(default: float, *, ge: float | None = None, gt: float | None = None) -> Any:
    """A duration setting in seconds: finite, and at most MAX_SECONDS."""
    return Field(default=default, ge=ge, gt=gt, le=MAX_SECONDS, allow_inf_nan=False)


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError("must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("has no host name")
    return value


class Settings(BaseSettings):
    """Every setting of the service; see the README's Configuration table."""

    model_config = SettingsConfigDict(env_prefix="NEXTSTEP_", extra="ignore", frozen=True)

    database_url: str = "sqlite:///./nextstep.db"
    api_keys: CSV = ()
    public_url: str = "http://127.0.0.1:8000"
    internal_domains: CSV = ()
    policy_file: Path | None = None
    secret_key: CSV = ()  # base64 keys of 32 bytes; the first encrypts and signs (app/secrets.py)

    google_service_account_file: Path | None = None
    google_api_root: str = "https://www.googleapis.com/"
    google_channel_ttl_seconds: int = _seconds(604800, ge=1)  # extension: push channel life
    ms_tenant_id: str | None = None
    ms_client_id: str | None = None
    ms_client_secret: str | None = None
    ms_authority: str | None = None
    graph_api_root: str = "https://graph.microsoft.com/v1.0"

    nudge_webhook_url: str | None = None
    nudge_webhook_secret: str | None = None
    admin_email: str | None = None  # connection_lost nudges of reps without a manager

    # People sign in and reps connect their own calendars (README, "Sign-in and per-user
    # connections"): OAuth web clients; the redirect URI is {public_url}/auth/{provider}/callback.
    google_oauth_client_id: str | None = None
    google_oauth_client_secret: str | None = None
    google_oauth_issuer: str = "https://accounts.google.com"
    ms_oauth_client_id: str | None = None
    ms_oauth_client_secret: str | None = None
    ms_oauth_authority: str = "https://login.microsoftonline.com/organizations"
    admin_emails: CSV = ()  # see every rep and board
    session_seconds: int = Field(default=43200, ge=300, le=30 * 86400)  # signed-in this long
    # Chat and CRM write-back (README, "Connecting chat tools and CRMs").
    slack_bot_token: str | None = None
    slack_api_root: str = "https://slack.com/api/"
    teams_webhook_url: str | None = None
    hubspot_token: str | None = None
    hubspot_api_root: str = "https://api.hubapi.com"
    salesforce_instance_url: str | None = None
    salesforce_client_id: str | None = None
    salesforce_client_secret: str | None = None

    # Extensions beyond the contract (README, "Configuration").
    sandbox: bool = False  # registers the in-process sandbox provider ("provider": "sandbox")
    clock: Annotated[datetime | None, NoDecode] = None  # the trial clock's start (sandbox only)
    slack_webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = ""  # required with smtp_host: no made-up sender
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    poll_seconds: float = _seconds(5.0, gt=0)  # longest sleep between due-work checks
    safety_net_sync_seconds: float = _seconds(3600.0, gt=0)  # quiet calendars re-synced
    sync_min_interval_seconds: float = _seconds(1.0, ge=0)  # bursts coalesce
    renew_before_seconds: float = _seconds(86400.0, gt=0)  # renew channels this early
    lease_seconds: float = _seconds(15.0, gt=0)  # renewed by the heartbeat while in hand
    # 20 attempts with the outbox's backoff span at least ~90 minutes: a receiver down for an
    # hour loses nothing (CONTRACT.md, "CRM write-back and chat").
    delivery_max_attempts: int = Field(default=20, ge=1, le=1000)
    shutdown_grace_seconds: float = _seconds(20.0, ge=0)
    webhook_max_inflight: int = Field(default=256, ge=1)  # more at once: 503 + Retry-After
    max_body_bytes: int = Field(default=1048576, ge=1024, le=1 << 30)  # larger: 413
    # Calendar events, account history, meetings and nudges older than this are deleted.
    retention_days: int = Field(default=730, ge=30, le=36500)
    log_level: str = "INFO"

    _csv = field_validator(
        "api_keys", "internal_domains", "secret_key", "admin_emails", mode="before"
    )(_split_csv)

    @field_validator("admin_emails")
    @classmethod
    def _admins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        emails = tuple(e.strip().lower() for e in value)
        for email in emails:
            if not _EMAIL.match(email):
                raise ValueError(f"{email!r} is not an e-mail address")
        return emails

    @property
    def retention(self) -> timedelta:
        """NEXTSTEP_RETENTION_DAYS as a duration."""
        return timedelta(days=self.retention_days)

    @field_validator("internal_domains")
    @classmethod
    def _domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        domains = tuple(d.lower().lstrip("@") for d in value)
        for domain in domains:
            if not _DOMAIN.match(domain):
                raise ValueError(f"{domain!r} is not an e-mail domain (e.g. example.com)")
        return domains

    @field_validator("secret_key")
    @classmethod
    def _keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        decode_keys(value)  # raises ValueError saying which key is wrong, never showing it
        return value

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: str) -> str:
        usage = "must be a sqlite:///path or postgresql+psycopg://user@host/db SQLAlchemy URL"
        try:
            url = make_url(value)
        except (ArgumentError, ValueError) as err:
            raise ValueError(usage) from err
        backend, _, driver = url.drivername.partition("+")
        if backend in ("postgresql", "postgres"):
            if driver not in ("", "psycopg"):
                raise ValueError(f"driver {driver!r} is not installed; use postgresql+psycopg://")
            # postgres:// (Heroku and friends) and the bare postgresql:// mean psycopg 3 here.
            return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        if backend != "sqlite":
            raise ValueError(usage)
        database = url.database or ""
        if database in ("", ":memory:") or "mode=memory" in value:
            raise ValueError(
                "an in-memory SQLite database cannot be shared by the service's connections; "
                "use a file, e.g. sqlite:///./nextstep.db"
            )
        folder = Path(database).expanduser().parent
        if not folder.is_dir():
            raise ValueError(f"folder '{folder}' of the SQLite file does not exist")
        return value

    @field_validator(
        "public_url",
        "graph_api_root",
        "ms_authority",
        "nudge_webhook_url",
        "slack_webhook_url",
        "google_oauth_issuer",
        "ms_oauth_authority",
        "slack_api_root",
        "teams_webhook_url",
        "hubspot_api_root",
        "salesforce_instance_url",
    )
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)

    @field_validator("google_api_root")
    @classmethod
    def _root(cls, value: str) -> str:
        # The Calendar API lives at {root}calendar/v3/: a root without its slash is meant.
        return _check_url(value if value.endswith("/") else value + "/")

    @field_validator("policy_file", "google_service_account_file")
    @classmethod
    def _file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"file {str(value)!r} does not exist")
        return value

    @field_validator("google_service_account_file")
    @classmethod
    def _service_account(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        try:
            key = json.loads(value.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"cannot read {str(value)!r}: {err}") from err
        except json.JSONDecodeError as err:
            raise ValueError(f"{str(value)!r} is not a JSON key file ({err})") from err
        if not isinstance(key, dict) or key.get("type") != "service_account":
            raise ValueError(
                f'{str(value)!r} is not a service-account key (no "type": "service_account")'
            )
        missing = [k for k in ("client_email", "private_key", "token_uri") if not key.get(k)]
        if missing:
            raise ValueError(
                f"{str(value)!r} is a service-account key without {', '.join(missing)}"
            )
        return value

    @field_validator("smtp_from")
    @classmethod
    def _sender(cls, value: str) -> str:
        value = value.strip()
        if value and not _EMAIL.match(value):
            raise ValueError(f"{value!r} is not an e-mail address")
        return value

    @field_validator("clock", mode="before")
    @classmethod
    def _clock(cls, value: object) -> datetime | None:
        if value is None or isinstance(value, datetime):
            instant = value
        else:
            text = str(value).strip()
            try:
                instant = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError as err:
                raise ValueError("is not an ISO 8601 instant (e.g. 2026-11-23T08:00:00Z)") from err
        if instant is not None and instant.tzinfo is None:
            raise ValueError("needs a UTC offset (e.g. 2026-11-23T08:00:00Z)")
        return None if instant is None else instant.astimezone(UTC)

    @field_validator("admin_email")
    @classmethod
    def _admin(cls, value: str | None) -> str | None:
        value = (value or "").strip().lower()
        if value and not _EMAIL.match(value):
            raise ValueError(f"{value!r} is not an e-mail address")
        return value or None

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.strip().upper()
        level = "WARNING" if level == "WARN" else level
        if level not in LOG_LEVELS:
            raise ValueError(f"{value!r} is not a log level ({', '.join(LOG_LEVELS)})")
        return level

    @model_validator(mode="after")
    def _pairs(self) -> Settings:
        ms = {
            "NEXTSTEP_MS_TENANT_ID": self.ms_tenant_id,
            "NEXTSTEP_MS_CLIENT_ID": self.ms_client_id,
            "NEXTSTEP_MS_CLIENT_SECRET": self.ms_client_secret,
        }
        given = [k for k, v in ms.items() if v]
        if given and len(given) != len(ms):
            missing = next(k for k, v in ms.items() if not v)
            raise ValueError(
                f"{missing}: required when {given[0]} is set (Microsoft needs {', '.join(ms)})"
            )
        if self.clock is not None and not self.sandbox:
            raise ValueError(
                "NEXTSTEP_CLOCK: a trial clock runs only on the sandbox; set NEXTSTEP_SANDBOX=true "
                "or unset NEXTSTEP_CLOCK to run on real time"
            )
        for provider in ("GOOGLE", "MS"):
            pair = (
                f"NEXTSTEP_{provider}_OAUTH_CLIENT_ID",
                f"NEXTSTEP_{provider}_OAUTH_CLIENT_SECRET",
            )
            values = [getattr(self, var.removeprefix("NEXTSTEP_").lower()) for var in pair]
            if any(values) and not all(values):
                have, lack = (pair[0], pair[1]) if values[0] else (pair[1], pair[0])
                raise ValueError(f"{lack}: required when {have} is set")
        sf = {
            "NEXTSTEP_SALESFORCE_INSTANCE_URL": self.salesforce_instance_url,
            "NEXTSTEP_SALESFORCE_CLIENT_ID": self.salesforce_client_id,
            "NEXTSTEP_SALESFORCE_CLIENT_SECRET": self.salesforce_client_secret,
        }
        sf_given = [k for k, v in sf.items() if v]
        if sf_given and self.hubspot_token:
            raise ValueError(
                f"NEXTSTEP_HUBSPOT_TOKEN: set together with {sf_given[0]}, but there is one "
                "CRM per deployment (HubSpot and Salesforce are both configured; unset one)"
            )
        if sf_given and len(sf_given) != len(sf):
            missing = next(k for k, v in sf.items() if not v)
            raise ValueError(
                f"{missing}: required when {sf_given[0]} is set (Salesforce needs {', '.join(sf)})"
            )
        if self.nudge_webhook_url and not self.nudge_webhook_secret:
            raise ValueError(
                "NEXTSTEP_NUDGE_WEBHOOK_SECRET: required when NEXTSTEP_NUDGE_WEBHOOK_URL is set"
            )
        if self.smtp_host and not self.smtp_from:
            raise ValueError(
                "NEXTSTEP_SMTP_FROM: required when NEXTSTEP_SMTP_HOST is set "
                "(the sender of the nudge e-mails, e.g. nextstep@your-company.com)"
            )
        if bool(self.smtp_username) != bool(self.smtp_password):
            given_var, missing_var = (
                ("NEXTSTEP_SMTP_USERNAME", "NEXTSTEP_SMTP_PASSWORD")
                if self.smtp_username
                else ("NEXTSTEP_SMTP_PASSWORD", "NEXTSTEP_SMTP_USERNAME")
            )
            raise ValueError(f"{missing_var}: required when {given_var} is set")
        return self

    @property
    def sync_interval(self) -> timedelta:
        """Notification bursts coalesce over this; not on a trial clock, which stands still
        between moves (a change is synced by the next ``POST /sandbox/clock``)."""
        return timedelta(seconds=0 if self.clock is not None else self.sync_min_interval_seconds)

    @property
    def google_enabled(self) -> bool:
        return self.google_service_account_file is not None or self.google_user_oauth

    @property
    def microsoft_enabled(self) -> bool:
        return bool(self.ms_tenant_id) or self.microsoft_user_oauth

    @property
    def google_user_oauth(self) -> bool:
        """Reps may connect their own Google calendars; people may sign in with Google."""
        return bool(self.google_oauth_client_id and self.google_oauth_client_secret)

    @property
    def microsoft_user_oauth(self) -> bool:
        return bool(self.ms_oauth_client_id and self.ms_oauth_client_secret)

    @cached_property
    def ms_authority_url(self) -> str:
        return self.ms_authority or f"https://login.microsoftonline.com/{self.ms_tenant_id}"


_HIDDEN = ("SECRET", "PASSWORD", "TOKEN", "API_KEYS")  # also *_OAUTH_CLIENT_SECRET


def _shown(var: str, value: str | None) -> str:
    """`` (got '…')`` for the error line, unless the value is a secret."""
    if value is None or any(word in var for word in _HIDDEN):
        return ""
    if var == "NEXTSTEP_DATABASE_URL":
        try:
            value = make_url(value).render_as_string(hide_password=True)
        except (ArgumentError, ValueError):
            return ""
    return f" (got {value!r})"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; a bad one raises ConfigError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as err:
        lines = []
        for problem in err.errors():
            loc = [str(p) for p in problem["loc"]]
            message = problem["msg"].removeprefix("Value error, ")
            if not loc:  # a rule between settings: the message names the variables
                lines.append(message)
                continue
            var = f"NEXTSTEP_{loc[0].upper()}"
            lines.append(f"{var}: {message}{_shown(var, _env(var))}")
        raise ConfigError("; ".join(lines)) from err


def _env(var: str) -> str | None:
    """The variable's value, matched case-insensitively as pydantic-settings does."""
    return next((v for k, v in os.environ.items() if k.upper() == var), None)


# --- start-up warnings ------------------------------------------------------------------

TOOL_PREFIXES = ("NEXTSTEP_TEST_", "NEXTSTEP_BENCH_", "NEXTSTEP_CHECK_", "NEXTSTEP_DEMO_")
"""Variables of the test suite, the benchmarks and the scripts: not settings, not warned."""


def known_variables() -> frozenset[str]:
    """Every NEXTSTEP_ variable the service reads (the contract's v2 ones included)."""
    return frozenset(f"NEXTSTEP_{name.upper()}" for name in Settings.model_fields)


@dataclass(frozen=True)
class StartupWarning:
    """Allowed, but probably not what the operator meant; logged once at start-up."""

    event: str
    detail: str
    fields: dict[str, str] = field(default_factory=dict)

    def log(self, logger: logging.Logger) -> None:
        logger.warning(self.event, extra={"detail": self.detail, **self.fields})


def startup_warnings(settings: Settings, environ: Mapping[str, str]) -> list[StartupWarning]:
    """Unknown NEXTSTEP_ variables (with the closest known name) and risky omissions."""
    known = known_variables()
    suffixes = sorted(k.removeprefix("NEXTSTEP_") for k in known)
    out = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith("NEXTSTEP_") or upper in known or upper.startswith(TOOL_PREFIXES):
            continue
        close = difflib.get_close_matches(upper.removeprefix("NEXTSTEP_"), suffixes, n=1)
        suggestion = f"NEXTSTEP_{close[0]}" if close else ""
        hint = f"; did you mean {suggestion}?" if suggestion else ""
        out.append(
            StartupWarning(
                "config.unknown_variable",
                f"{name} is not a NextStep setting and is ignored{hint}",
                {"variable": name, "suggestion": suggestion},
            )
        )
    if not settings.internal_domains:
        out.append(
            StartupWarning(
                "config.internal_domains_missing",
                "NEXTSTEP_INTERNAL_DOMAINS is not set: every attendee domain counts as "
                "external: a 1:1 with your own manager would be tracked as a prospect meeting",
                {"variable": "NEXTSTEP_INTERNAL_DOMAINS"},
            )
        )
    if not settings.api_keys:
        out.append(
            StartupWarning(
                "config.api_keys_missing",
                "NEXTSTEP_API_KEYS is not set: every /v1 call is refused (401)",
                {"variable": "NEXTSTEP_API_KEYS"},
            )
        )
    return out
