"""Settings: one pydantic-settings class, prefix NEXTSTEP_, fails fast naming the variable."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.errors import ConfigError

CSV = Annotated[tuple[str, ...], NoDecode]


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class Settings(BaseSettings):
    """Every setting of the service; see the README's Configuration table."""

    model_config = SettingsConfigDict(env_prefix="NEXTSTEP_", extra="ignore", frozen=True)

    database_url: str = "sqlite:///./nextstep.db"
    api_keys: CSV = ()
    public_url: str = "http://127.0.0.1:8000"
    internal_domains: CSV = ()
    policy_file: Path | None = None

    google_service_account_file: Path | None = None
    google_api_root: str = "https://www.googleapis.com/"
    google_channel_ttl_seconds: int = Field(default=604800, ge=1)  # extension: push channel life
    ms_tenant_id: str | None = None
    ms_client_id: str | None = None
    ms_client_secret: str | None = None
    ms_authority: str | None = None
    graph_api_root: str = "https://graph.microsoft.com/v1.0"

    nudge_webhook_url: str | None = None
    nudge_webhook_secret: str | None = None

    # Extensions beyond the contract (README, "Configuration").
    sandbox: bool = False  # registers the in-process sandbox provider ("provider": "sandbox")
    slack_webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "nextstep@localhost"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    poll_seconds: float = Field(default=5.0, gt=0)  # longest sleep between due-work checks
    safety_net_sync_seconds: float = Field(default=3600.0, gt=0)  # quiet calendars re-synced
    sync_min_interval_seconds: float = Field(default=1.0, ge=0)  # bursts coalesce
    renew_before_seconds: float = Field(default=86400.0, gt=0)  # renew channels this early
    lease_seconds: float = Field(default=60.0, gt=0)
    delivery_max_attempts: int = Field(default=12, ge=1)
    shutdown_grace_seconds: float = Field(default=20.0, ge=0)
    webhook_max_inflight: int = Field(default=256, ge=1)  # more at once: 503 + Retry-After
    log_level: str = "INFO"

    _csv_api = field_validator("api_keys", "internal_domains", mode="before")(_split_csv)

    @field_validator("internal_domains")
    @classmethod
    def _lower_domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(d.lower().lstrip("@") for d in value)

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// SQLAlchemy URL")
        return value

    @field_validator("public_url", "google_api_root", "graph_api_root")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("policy_file", "google_service_account_file")
    @classmethod
    def _file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"file {str(value)!r} does not exist")
        return value

    @model_validator(mode="after")
    def _pairs(self) -> Settings:
        ms = {
            "NEXTSTEP_MS_TENANT_ID": self.ms_tenant_id,
            "NEXTSTEP_MS_CLIENT_ID": self.ms_client_id,
            "NEXTSTEP_MS_CLIENT_SECRET": self.ms_client_secret,
        }
        given = [k for k, v in ms.items() if v]
        if given and len(given) != len(ms):
            missing = ", ".join(k for k, v in ms.items() if not v)
            raise ValueError(f"Microsoft is half-configured: {missing} missing")
        if self.nudge_webhook_url and not self.nudge_webhook_secret:
            raise ValueError(
                "NEXTSTEP_NUDGE_WEBHOOK_SECRET is required when NEXTSTEP_NUDGE_WEBHOOK_URL is set"
            )
        return self

    @property
    def google_enabled(self) -> bool:
        return self.google_service_account_file is not None

    @property
    def microsoft_enabled(self) -> bool:
        return bool(self.ms_tenant_id)

    @cached_property
    def ms_authority_url(self) -> str:
        return self.ms_authority or f"https://login.microsoftonline.com/{self.ms_tenant_id}"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; a bad one raises ConfigError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as err:
        first = err.errors()[0]
        loc = [str(p) for p in first["loc"]]
        var = f"NEXTSTEP_{loc[0].upper()}" if loc else "settings"
        message = first["msg"].removeprefix("Value error, ")
        value = os.environ.get(var)
        shown = f" (got {value!r})" if value is not None and "SECRET" not in var else ""
        if not loc:
            raise ConfigError(f"invalid settings: {message}") from err
        raise ConfigError(f"{var}: {message}{shown}") from err
