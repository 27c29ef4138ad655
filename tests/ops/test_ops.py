"""Operations: /metrics, request ids in answers and logs, the webhook in-flight bound,
/readyz while the database is unreachable, crash points off by default."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import httpx
import pytest

from app import logs
from app.config import load_settings
from app.main import create_app
from app.ops.middleware import WebhookAdmission
from tests.helpers.calendar import register


@pytest.fixture
async def api(rt):
    app = create_app(runtime=rt, start_scheduler=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"Authorization": "Bearer test-key"},
    ) as client:
        yield client


async def test_metrics_are_prometheus_text_with_the_operational_families(api, rt):
    await register(rt)
    response = await api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    body = response.text
    for family in (
        "nextstep_sync_lag_seconds",
        "nextstep_due_lag_seconds",
        "nextstep_queue_depth",
        "nextstep_delivery_failures_total",
        "nextstep_provider_calls_total",
        "nextstep_provider_errors_total",
    ):
        assert f"# TYPE {family} " in body, family
    assert re.search(r'^nextstep_sync_lag_seconds\{provider="sandbox"\} [0-9.e+-]+$', body, re.M)
    assert re.search(
        r'^nextstep_provider_calls_total\{provider="sandbox",operation="sync_page"\} [1-9]',
        body,
        re.M,
    )
    for line in body.splitlines():  # every sample line: name{labels} value
        assert line.startswith("#") or re.match(r"^[a-z_]+(\{[^}]*\})? -?[0-9.e+-]+$", line), line


async def test_every_answer_carries_a_request_id_and_logs_do_too(api, caplog):
    given = await api.get("/healthz", headers={"X-Request-ID": "crm-42"})
    assert given.headers["x-request-id"] == "crm-42"
    made = await api.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    token = logs.request_id.set("r-1")
    try:
        record = logging.LogRecord("x", logging.INFO, "f", 1, "thing.happened", (), None)
        line = json.loads(logs.JsonFormatter().format(record))
    finally:
        logs.request_id.reset(token)
    assert line["request_id"] == "r-1" and line["event"] == "thing.happened"


async def test_webhooks_beyond_the_in_flight_limit_get_503_with_retry_after() -> None:
    release = asyncio.Event()
    stored: list[str] = []

    async def slow_app(scope, receive, send):  # stands for verify → store → ack
        await release.wait()
        stored.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = WebhookAdmission(slow_app, limit=2)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        held = [asyncio.create_task(c.post("/webhooks/google")) for _ in range(2)]
        while app.inflight < 2:
            await asyncio.sleep(0)
        busy = await c.post("/webhooks/google")
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == "1"
        assert stored == [], "the refused one was neither stored nor acknowledged"
        release.set()
        assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
        assert (await c.post("/webhooks/google")).status_code == 200
    assert len(stored) == 3


async def test_readyz_fails_while_the_database_is_unreachable() -> None:
    from app.db.engine import Database
    from app.main import build_runtime

    settings = load_settings(
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none", sandbox=True
    )
    dead = build_runtime(settings, db=Database(settings.database_url))
    try:
        app = create_app(runtime=dead, start_scheduler=False)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            response = await c.get("/readyz")
            assert response.status_code == 503
            assert response.json()["status"] == "unavailable"
            assert (await c.get("/healthz")).status_code == 200
    finally:
        dead.db.dispose()


def test_crash_points_are_off_by_default() -> None:
    from app import crash

    assert not crash._ARMED
    crash.crash_point("meeting.decided")  # returns: nothing is armed


def test_serve_on_postgresql_refuses_an_outdated_or_newer_schema_naming_the_revision(
    tmp_path,
) -> None:
    import os
    import subprocess
    import sys
    import uuid

    from sqlalchemy import create_engine, text

    from tests.conftest import postgres_url
    from tests.helpers.serve import TEST_SECRET_KEY

    base = postgres_url()
    schema = f"m_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXTSTEP_")}
    env["NEXTSTEP_DATABASE_URL"] = url
    env["NEXTSTEP_SECRET_KEY"] = TEST_SECRET_KEY

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    try:
        empty = run("serve", "--port", "1")
        assert empty.returncode == 2
        assert "schema is empty" in empty.stderr and "nextstep migrate" in empty.stderr
        migrated = run("migrate")
        assert migrated.returncode == 0, migrated.stderr
        head = migrated.stdout.split("→")[-1].strip()
        with admin.begin() as conn:
            conn.execute(text(f"UPDATE {schema}.alembic_version SET version_num = 'ffffffffffff'"))
        newer = run("serve", "--port", "1")
        assert newer.returncode == 2
        assert "ffffffffffff" in newer.stderr and head in newer.stderr
        assert "newer than this version" in newer.stderr
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
