"""Settings and the command line: a bad setting stops start-up with one line naming it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app.config import load_settings
from app.errors import ConfigError


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"NEXTSTEP_DATABASE_URL": "mysql://x"}, "NEXTSTEP_DATABASE_URL"),
        ({"NEXTSTEP_PUBLIC_URL": "ftp://x"}, "NEXTSTEP_PUBLIC_URL"),
        ({"NEXTSTEP_POLICY_FILE": "/nope/policy.yaml"}, "NEXTSTEP_POLICY_FILE"),
        (
            {"NEXTSTEP_GOOGLE_SERVICE_ACCOUNT_FILE": "/nope/key.json"},
            "NEXTSTEP_GOOGLE_SERVICE_ACCOUNT_FILE",
        ),
        ({"NEXTSTEP_MS_TENANT_ID": "t"}, "NEXTSTEP_MS_CLIENT_ID"),
        (
            {"NEXTSTEP_NUDGE_WEBHOOK_URL": "https://crm.example/hook"},
            "NEXTSTEP_NUDGE_WEBHOOK_SECRET",
        ),
        ({"NEXTSTEP_POLL_SECONDS": "soon"}, "NEXTSTEP_POLL_SECONDS"),
    ],
)
def test_bad_settings_name_the_variable(monkeypatch, env, names):
    for key in list(os.environ):
        if key.startswith("NEXTSTEP_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert names in str(err.value)


def test_defaults_match_the_contract(monkeypatch):
    for key in list(os.environ):
        if key.startswith("NEXTSTEP_"):
            monkeypatch.delenv(key)
    s = load_settings()
    assert s.database_url == "sqlite:///./nextstep.db"
    assert s.api_keys == ()
    assert s.public_url == "http://127.0.0.1:8000"
    assert s.google_api_root == "https://www.googleapis.com/"
    assert s.graph_api_root == "https://graph.microsoft.com/v1.0"
    monkeypatch.setenv("NEXTSTEP_MS_TENANT_ID", "contoso")
    monkeypatch.setenv("NEXTSTEP_MS_CLIENT_ID", "id")
    monkeypatch.setenv("NEXTSTEP_MS_CLIENT_SECRET", "secret")
    monkeypatch.setenv("NEXTSTEP_API_KEYS", "a, b ,,c")
    monkeypatch.setenv("NEXTSTEP_INTERNAL_DOMAINS", "Seller.io,@other.com")
    s = load_settings()
    assert s.ms_authority_url == "https://login.microsoftonline.com/contoso"
    assert s.api_keys == ("a", "b", "c")
    assert s.internal_domains == ("seller.io", "other.com")


def _run(args: list[str], env: dict[str, str], cwd) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    base = {k: v for k, v in os.environ.items() if not k.startswith("NEXTSTEP_")}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_refuses_a_bad_setting_with_one_clear_line(tmp_path):
    r = _run(["serve", "--port", "0"], {"NEXTSTEP_PUBLIC_URL": "nope"}, tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "nextstep: error: NEXTSTEP_PUBLIC_URL: must start with http:// or https:// (got 'nope')"
    ]


def test_serve_refuses_a_malformed_policy_file_naming_file_and_key(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text("policies:\n  - name: x\n    invite_within: 2 hours\n")
    r = _run(
        ["serve"],
        {
            "NEXTSTEP_POLICY_FILE": str(policy),
            "NEXTSTEP_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite",
        },
        tmp_path,
    )
    assert r.returncode == 2
    line = r.stderr.strip().splitlines()[-1]
    assert str(policy) in line and "invite_within" in line


def test_migrate_then_serve_on_postgres_refuses_an_outdated_schema(tmp_path):
    from sqlalchemy import create_engine, text

    from app.db import migrate
    from tests.conftest import postgres_url

    base = postgres_url()
    engine = create_engine(base)
    schema = "cli_migrate_test"
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    head = migrate.head_revision(engine)  # the newest migration's revision
    try:
        r = _run(["serve", "--port", "0"], {"NEXTSTEP_DATABASE_URL": url}, tmp_path)
        assert r.returncode == 2 and "nextstep migrate" in r.stderr and head in r.stderr
        r = _run(["migrate"], {"NEXTSTEP_DATABASE_URL": url}, tmp_path)
        assert r.returncode == 0, r.stderr
        assert f"empty → {head}" in r.stdout
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE {schema}.alembic_version SET version_num = '9999'"))
        r = _run(["serve", "--port", "0"], {"NEXTSTEP_DATABASE_URL": url}, tmp_path)
        assert r.returncode == 2 and "9999" in r.stderr and "newer" in r.stderr
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()


def test_an_unreadable_ca_bundle_stops_start_up_naming_the_variable(tmp_path):
    r = _run(
        ["serve", "--port", "0"],
        {
            "NEXTSTEP_NUDGE_WEBHOOK_URL": "https://crm.example/hook",
            "NEXTSTEP_NUDGE_WEBHOOK_SECRET": "s",
            "NEXTSTEP_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite",
            "REQUESTS_CA_BUNDLE": str(tmp_path / "missing.pem"),
        },
        tmp_path,
    )
    assert r.returncode == 2
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("nextstep: error: REQUESTS_CA_BUNDLE=") and "missing.pem" in line
