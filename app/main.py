"""create_app(): routers, error handlers; the lifespan starts and stops the scheduler."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.accounts.endpoints import router as accounts
from app.actions.endpoints import router as actions
from app.clock import Clock, ManualClock
from app.config import Settings, load_settings
from app.db import migrate
from app.db.engine import Database, ping
from app.delivery import service as delivery
from app.delivery.channels import (
    EmailChannel,
    HubSpotChannel,
    SalesforceChannel,
    SlackBotChannel,
    SlackChannel,
    TeamsChannel,
    WebhookChannel,
)
from app.errors import ConfigError, RequestError
from app.meetings.endpoints import router as meetings
from app.nudges.endpoints import events_router as crm_events
from app.nudges.endpoints import router as nudges
from app.ops import metrics
from app.ops.middleware import BodyLimits, RequestId, WebhookAdmission
from app.ops.repository import cluster_gauges
from app.providers import build_providers, user_grants
from app.reps.endpoints import router as reps
from app.reps.service import store_grant
from app.runtime import Runtime
from app.sandbox.endpoints import router as sandbox
from app.scheduler.runner import Scheduler
from app.secrets import KeyRing, bind_key_ring, load_key_ring
from app.web.endpoints import router as web
from app.webhooks.endpoints import router as webhooks
from app.webhooks.service import pushed
from connectors.base import CalendarProvider
from policies.loader import load_policies

log = logging.getLogger(__name__)


def build_channels(settings: Settings) -> dict[str, Any]:
    """The nudge channels this process is configured for."""
    channels: dict[str, Any] = {}
    if settings.nudge_webhook_url and settings.nudge_webhook_secret:
        channels["webhook"] = WebhookChannel(
            settings.nudge_webhook_url, settings.nudge_webhook_secret
        )
    if settings.smtp_host:
        channels["email"] = EmailChannel(
            settings.smtp_host,
            settings.smtp_port,
            sender=settings.smtp_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )
    if settings.slack_webhook_url:
        channels["slack"] = SlackChannel(settings.slack_webhook_url)
    if settings.slack_bot_token:
        channels["slack_bot"] = SlackBotChannel(
            settings.slack_bot_token, api_root=settings.slack_api_root
        )
    if settings.teams_webhook_url:
        channels["teams"] = TeamsChannel(settings.teams_webhook_url)
    if settings.hubspot_token:
        channels["hubspot"] = HubSpotChannel(
            settings.hubspot_token, api_root=settings.hubspot_api_root
        )
    if (
        settings.salesforce_instance_url
        and settings.salesforce_client_id
        and settings.salesforce_client_secret
    ):
        channels["salesforce"] = SalesforceChannel(
            settings.salesforce_instance_url,
            settings.salesforce_client_id,
            settings.salesforce_client_secret,
        )
    return channels


def prepare_database(settings: Settings, keys: KeyRing) -> Database:
    """SQLite is migrated in place; PostgreSQL must already be at head (`nextstep migrate`)."""
    db = Database(settings.database_url)
    try:
        if db.is_sqlite:
            migrate.upgrade(db.engine, keys)
        else:
            migrate.check_schema(db.engine)
    except Exception:
        db.dispose()
        raise
    return db


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    providers: dict[str, CalendarProvider] | None = None,
    channels: dict[str, Any] | None = None,
    db: Database | None = None,
) -> Runtime:
    if clock is None:
        # NEXTSTEP_CLOCK (sandbox only): the trial clock, moved by POST /sandbox/clock.
        clock = ManualClock(settings.clock) if settings.clock is not None else Clock()
    policies = load_policies(settings.policy_file)
    keys = load_key_ring(settings.secret_key, settings.database_url)
    try:
        providers = providers if providers is not None else build_providers(settings, clock)
        channels = channels if channels is not None else build_channels(settings)
    except ValueError as err:  # e.g. an unreadable key file or CA bundle, named in the message
        raise ConfigError(str(err)) from err
    rt = Runtime(
        settings=settings,
        db=db or prepare_database(settings, keys),
        clock=clock,
        policies=policies,
        providers=providers,
        keys=keys,
        channels=channels,
    )
    bind_key_ring(rt.db.engine, keys)  # EncryptedText columns read and write through it
    for name, provider in rt.providers.items():  # in-process pushes (the sandbox's)
        provider.set_push_handler(partial(pushed, rt, name))
    for granting in user_grants(rt.providers):  # a rep's rotated grant is kept (encrypted)
        granting.set_grant_handler(partial(store_grant, rt))
    return rt


async def close_runtime(rt: Runtime) -> None:
    for provider in rt.providers.values():
        await provider.aclose()
    for channel in rt.channels.values():
        await channel.aclose()
    rt.db.dispose()


def _validation_detail(err: RequestValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e.get("loc", ()))
        msg = e.get("msg", "invalid")
        if e.get("type") == "json_invalid":
            msg = f"body is not valid JSON ({e.get('ctx', {}).get('error', msg)})"
            loc = ""
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid request"


def create_app(
    settings: Settings | None = None,
    *,
    runtime: Runtime | None = None,
    start_scheduler: bool = True,
) -> FastAPI:
    """The HTTP API, the provider webhooks and (in the lifespan) the background scheduler."""
    settings = settings or (runtime.settings if runtime else load_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or build_runtime(settings)
        app.state.runtime = rt
        scheduler = Scheduler(rt) if start_scheduler else None
        if scheduler is not None:
            scheduler.start()
            rt.wake.sync(None)
        log.info("service.started", extra={"instance": rt.instance_id})
        try:
            yield
        finally:
            if scheduler is not None:
                await scheduler.stop(settings.shutdown_grace_seconds / 2)
            if runtime is None:
                await close_runtime(rt)
            log.info("service.stopped", extra={"instance": rt.instance_id})

    app = FastAPI(
        title="NextStep",
        version="1.0",
        description="A prospect meeting is not over until the follow-up invite is accepted.",
        lifespan=lifespan,
    )

    if runtime is not None:
        app.state.runtime = runtime  # usable before the lifespan runs (in-process tests)

    app.add_middleware(BodyLimits, max_bytes=settings.max_body_bytes)  # 413 / 415
    app.add_middleware(WebhookAdmission, limit=settings.webhook_max_inflight)
    app.add_middleware(RequestId)  # outermost: even a 503 carries a request id

    @app.exception_handler(RequestError)
    async def _request_error(_: Request, err: RequestError) -> JSONResponse:
        return JSONResponse({"detail": err.detail}, status_code=err.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_detail(err)}, status_code=422)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz(request: Request) -> JSONResponse:
        """The database answers and the process is not shutting down."""
        rt: Runtime = request.app.state.runtime
        if rt.stopping:
            return JSONResponse({"status": "stopping"}, status_code=503)
        try:
            await rt.db.run(ping)
        except Exception as err:  # noqa: BLE001 - any failure means not ready
            return JSONResponse(
                {"status": "unavailable", "detail": str(err)[:300]}, status_code=503
            )
        return JSONResponse({"status": "ok"})

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics_text(request: Request) -> Response:
        """Prometheus text exposition: this process's counters, the cluster's queues."""
        rt: Runtime = request.app.state.runtime
        gauges = await rt.db.run(cluster_gauges, rt.clock.now())
        text = metrics.render(gauges, rt.providers, delivery.failures)
        return Response(text, media_type=metrics.CONTENT_TYPE)

    for router in (reps, accounts, meetings, nudges, crm_events, webhooks, actions, web):
        app.include_router(router)
    if settings.sandbox:
        app.include_router(sandbox)
    return app
