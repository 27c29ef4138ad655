"""Settings and the command line: a bad setting stops start-up with one line naming it;
a doubtful one is a warning line; nothing prints a traceback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from app import cli
from app.config import Settings, known_variables, load_settings, startup_warnings
from app.errors import ConfigError
from tests.helpers.serve import TEST_SECRET_KEY

QUIET = {"NEXTSTEP_INTERNAL_DOMAINS": "seller.io", "NEXTSTEP_API_KEYS": "k"}  # no warnings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No NEXTSTEP_ variable but those a test sets; the working directory is tmp_path."""
    for key in list(os.environ):
        if key.upper().startswith("NEXTSTEP_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def _key_file(tmp_path: Path, content: str) -> str:
    path = tmp_path / "key.json"
    path.write_text(content)
    return str(path)


# (field exercised, environment, variable the line must start with, text it must contain)
# The field names are checked against Settings below: a new setting needs its bad case here.
BAD = [
    ("database_url", {"DATABASE_URL": "mysql://x"}, "DATABASE_URL", "sqlite:///path"),
    ("database_url", {"DATABASE_URL": "sqlite:"}, "DATABASE_URL", "SQLAlchemy URL"),
    ("database_url", {"DATABASE_URL": "sqlite://"}, "DATABASE_URL", "in-memory"),
    ("database_url", {"DATABASE_URL": "sqlite:////nope/dir/x.db"}, "DATABASE_URL", "/nope/dir"),
    (
        "database_url",
        {"DATABASE_URL": "postgresql+psycopg2://u:pw@h/db"},
        "DATABASE_URL",
        "psycopg2",
    ),
    ("public_url", {"PUBLIC_URL": "ftp://x"}, "PUBLIC_URL", "http:// or https://"),
    ("public_url", {"PUBLIC_URL": "https://"}, "PUBLIC_URL", "no host"),
    ("internal_domains", {"INTERNAL_DOMAINS": "acme com"}, "INTERNAL_DOMAINS", "e-mail domain"),
    ("internal_domains", {"INTERNAL_DOMAINS": "https://x.io"}, "INTERNAL_DOMAINS", "domain"),
    ("policy_file", {"POLICY_FILE": "/nope/policy.yaml"}, "POLICY_FILE", "does not exist"),
    ("policy_file", {"POLICY_FILE": "/"}, "POLICY_FILE", "does not exist"),
    ("secret_key", {"SECRET_KEY": "c2hvcnQ="}, "SECRET_KEY", "5 bytes, not 32"),
    ("secret_key", {"SECRET_KEY": "!!not base64!!"}, "SECRET_KEY", "not base64"),
    (
        "secret_key",
        {"SECRET_KEY": f"{TEST_SECRET_KEY},c2hvcnQ="},
        "SECRET_KEY",
        "key 2 of 2 is 5 bytes",
    ),
    (
        "google_service_account_file",
        {"GOOGLE_SERVICE_ACCOUNT_FILE": "/nope/key.json"},
        "GOOGLE_SERVICE_ACCOUNT_FILE",
        "does not exist",
    ),
    ("google_service_account_file", {"GOOGLE_SERVICE_ACCOUNT_FILE": "garbage"}, "", "JSON"),
    (
        "google_service_account_file",
        {"GOOGLE_SERVICE_ACCOUNT_FILE": '{"type": "service_account"}'},
        "GOOGLE_SERVICE_ACCOUNT_FILE",
        "without client_email, private_key, token_uri",
    ),
    (
        "google_service_account_file",
        {"GOOGLE_SERVICE_ACCOUNT_FILE": '{"type": "authorized_user"}'},
        "GOOGLE_SERVICE_ACCOUNT_FILE",
        "not a service-account key",
    ),
    ("google_api_root", {"GOOGLE_API_ROOT": "googleapis"}, "GOOGLE_API_ROOT", "http://"),
    (
        "google_channel_ttl_seconds",
        {"GOOGLE_CHANNEL_TTL_SECONDS": "0"},
        "GOOGLE_CHANNEL_TTL_SECONDS",
        "greater than or equal to 1",
    ),
    (
        "google_channel_ttl_seconds",
        {"GOOGLE_CHANNEL_TTL_SECONDS": "99999999999"},
        "GOOGLE_CHANNEL_TTL_SECONDS",
        "less than or equal to 31622400",
    ),
    ("ms_tenant_id", {"MS_TENANT_ID": "t"}, "MS_CLIENT_ID", "required when NEXTSTEP_MS_TENANT"),
    ("ms_client_id", {"MS_CLIENT_ID": "c"}, "MS_TENANT_ID", "required when NEXTSTEP_MS_CLIENT"),
    (
        "ms_client_secret",
        {"MS_TENANT_ID": "t", "MS_CLIENT_ID": "c"},
        "MS_CLIENT_SECRET",
        "required",
    ),
    ("ms_authority", {"MS_AUTHORITY": "login.example/t"}, "MS_AUTHORITY", "http://"),
    ("graph_api_root", {"GRAPH_API_ROOT": "graph"}, "GRAPH_API_ROOT", "http://"),
    ("nudge_webhook_url", {"NUDGE_WEBHOOK_URL": "crm/hook"}, "NUDGE_WEBHOOK_URL", "http://"),
    (
        "nudge_webhook_secret",
        {"NUDGE_WEBHOOK_URL": "https://crm.example/hook"},
        "NUDGE_WEBHOOK_SECRET",
        "required when NEXTSTEP_NUDGE_WEBHOOK_URL",
    ),
    ("sandbox", {"SANDBOX": "maybe"}, "SANDBOX", "boolean"),
    ("clock", {"CLOCK": "2026-11-23T08:00:00Z"}, "CLOCK", "only on the sandbox"),
    ("clock", {"SANDBOX": "true", "CLOCK": "friday"}, "CLOCK", "not an ISO 8601 instant"),
    ("clock", {"SANDBOX": "true", "CLOCK": "2026-11-23T08:00:00"}, "CLOCK", "UTC offset"),
    ("slack_webhook_url", {"SLACK_WEBHOOK_URL": "hooks/x"}, "SLACK_WEBHOOK_URL", "http://"),
    ("slack_api_root", {"SLACK_API_ROOT": "slack.com/api"}, "SLACK_API_ROOT", "http://"),
    ("teams_webhook_url", {"TEAMS_WEBHOOK_URL": "ftp://x"}, "TEAMS_WEBHOOK_URL", "http://"),
    ("hubspot_api_root", {"HUBSPOT_API_ROOT": "api.hubapi.com"}, "HUBSPOT_API_ROOT", "http://"),
    (
        "salesforce_instance_url",
        {"SALESFORCE_INSTANCE_URL": "acme.my.salesforce.com"},
        "SALESFORCE_INSTANCE_URL",
        "http://",
    ),
    (
        "salesforce_client_id",
        {"SALESFORCE_INSTANCE_URL": "https://acme.my.salesforce.com", "SALESFORCE_CLIENT_ID": "c"},
        "SALESFORCE_CLIENT_SECRET",
        "required when",
    ),
    (
        "salesforce_client_secret",
        {
            "HUBSPOT_TOKEN": "pat-na1-x",
            "SALESFORCE_INSTANCE_URL": "https://acme.my.salesforce.com",
            "SALESFORCE_CLIENT_ID": "c",
            "SALESFORCE_CLIENT_SECRET": "s",
        },
        "HUBSPOT_TOKEN",
        "one CRM per deployment",
    ),
    ("smtp_host", {"SMTP_HOST": "mail.seller.io"}, "SMTP_FROM", "required when"),
    ("smtp_port", {"SMTP_PORT": "0"}, "SMTP_PORT", "greater than or equal to 1"),
    ("smtp_port", {"SMTP_PORT": "70000"}, "SMTP_PORT", "less than or equal to 65535"),
    ("smtp_port", {"SMTP_PORT": "smtp"}, "SMTP_PORT", "valid integer"),
    ("smtp_from", {"SMTP_FROM": "nextstep"}, "SMTP_FROM", "not an e-mail address"),
    ("admin_email", {"ADMIN_EMAIL": "ops at seller"}, "ADMIN_EMAIL", "not an e-mail address"),
    ("smtp_username", {"SMTP_USERNAME": "u"}, "SMTP_PASSWORD", "required when"),
    ("smtp_password", {"SMTP_PASSWORD": "p"}, "SMTP_USERNAME", "required when"),
    ("smtp_starttls", {"SMTP_STARTTLS": "perhaps"}, "SMTP_STARTTLS", "boolean"),
    ("poll_seconds", {"POLL_SECONDS": "soon"}, "POLL_SECONDS", "valid number"),
    ("poll_seconds", {"POLL_SECONDS": "0"}, "POLL_SECONDS", "greater than 0"),
    ("poll_seconds", {"POLL_SECONDS": "inf"}, "POLL_SECONDS", "finite"),
    ("poll_seconds", {"POLL_SECONDS": "nan"}, "POLL_SECONDS", "finite"),
    ("poll_seconds", {"POLL_SECONDS": "1e12"}, "POLL_SECONDS", "less than or equal"),
    (
        "safety_net_sync_seconds",
        {"SAFETY_NET_SYNC_SECONDS": "-1"},
        "SAFETY_NET_SYNC_SECONDS",
        "greater than 0",
    ),
    (
        "sync_min_interval_seconds",
        {"SYNC_MIN_INTERVAL_SECONDS": "-1"},
        "SYNC_MIN_INTERVAL_SECONDS",
        "greater than or equal to 0",
    ),
    ("renew_before_seconds", {"RENEW_BEFORE_SECONDS": "0"}, "RENEW_BEFORE_SECONDS", "greater"),
    ("lease_seconds", {"LEASE_SECONDS": "inf"}, "LEASE_SECONDS", "finite"),
    ("lease_seconds", {"LEASE_SECONDS": "1e300"}, "LEASE_SECONDS", "less than or equal"),
    (
        "delivery_max_attempts",
        {"DELIVERY_MAX_ATTEMPTS": "0"},
        "DELIVERY_MAX_ATTEMPTS",
        "greater than or equal to 1",
    ),
    (
        "delivery_max_attempts",
        {"DELIVERY_MAX_ATTEMPTS": "100000"},
        "DELIVERY_MAX_ATTEMPTS",
        "less than or equal to 1000",
    ),
    (
        "shutdown_grace_seconds",
        {"SHUTDOWN_GRACE_SECONDS": "-5"},
        "SHUTDOWN_GRACE_SECONDS",
        "greater than or equal to 0",
    ),
    (
        "webhook_max_inflight",
        {"WEBHOOK_MAX_INFLIGHT": "0"},
        "WEBHOOK_MAX_INFLIGHT",
        "greater than or equal to 1",
    ),
    ("max_body_bytes", {"MAX_BODY_BYTES": "10"}, "MAX_BODY_BYTES", "greater than or equal"),
    ("max_body_bytes", {"MAX_BODY_BYTES": "big"}, "MAX_BODY_BYTES", "valid integer"),
    ("log_level", {"LOG_LEVEL": "LOUD"}, "LOG_LEVEL", "not a log level (DEBUG, INFO"),
    (
        "google_oauth_client_id",
        {"GOOGLE_OAUTH_CLIENT_SECRET": "s"},
        "GOOGLE_OAUTH_CLIENT_ID",
        "required when NEXTSTEP_GOOGLE_OAUTH_CLIENT_SECRET",
    ),
    (
        "google_oauth_client_secret",
        {"GOOGLE_OAUTH_CLIENT_ID": "c"},
        "GOOGLE_OAUTH_CLIENT_SECRET",
        "required when NEXTSTEP_GOOGLE_OAUTH_CLIENT_ID",
    ),
    ("google_oauth_issuer", {"GOOGLE_OAUTH_ISSUER": "accounts"}, "GOOGLE_OAUTH_ISSUER", "http"),
    (
        "ms_oauth_client_id",
        {"MS_OAUTH_CLIENT_SECRET": "s"},
        "MS_OAUTH_CLIENT_ID",
        "required when NEXTSTEP_MS_OAUTH_CLIENT_SECRET",
    ),
    (
        "ms_oauth_client_secret",
        {"MS_OAUTH_CLIENT_ID": "c"},
        "MS_OAUTH_CLIENT_SECRET",
        "required when NEXTSTEP_MS_OAUTH_CLIENT_ID",
    ),
    ("ms_oauth_authority", {"MS_OAUTH_AUTHORITY": "login/x"}, "MS_OAUTH_AUTHORITY", "http"),
    ("admin_emails", {"ADMIN_EMAILS": "boss"}, "ADMIN_EMAILS", "not an e-mail address"),
    ("session_seconds", {"SESSION_SECONDS": "10"}, "SESSION_SECONDS", "greater than or equal"),
    ("retention_days", {"RETENTION_DAYS": "7"}, "RETENTION_DAYS", "greater than or equal to 30"),
    ("retention_days", {"RETENTION_DAYS": "forever"}, "RETENTION_DAYS", "valid integer"),
]
ANY_VALUE = {
    "api_keys",
    "slack_bot_token",
    "hubspot_token",
}  # tokens: opaque  # any list of keys is valid (none: a warning, below)


def test_every_setting_has_a_bad_value_case() -> None:
    covered = {case[0] for case in BAD} | ANY_VALUE
    assert covered == set(Settings.model_fields)


def _materialise(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """NEXTSTEP_ names; a key-file value that is not a path is written to a file."""
    out = {}
    for key, value in env.items():
        if key == "GOOGLE_SERVICE_ACCOUNT_FILE" and not value.startswith("/"):
            value = _key_file(tmp_path, value)
        out[f"NEXTSTEP_{key}"] = value
    return out


@pytest.mark.parametrize(("setting", "env", "var", "says"), BAD)
def test_a_bad_setting_is_one_line_naming_the_variable(
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    setting: str,
    env: dict[str, str],
    var: str,
    says: str,
) -> None:
    full = _materialise(env, tmp_path)
    for key, value in full.items():
        clean_env.setenv(key, value)
    var = f"NEXTSTEP_{var or next(iter(env))}"
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert str(err.value).startswith(f"{var}: ") and says in str(err.value)
    assert "\n" not in str(err.value)
    # and the command line says exactly that, on one line, exit status 2
    assert cli.main(["serve", "--port", "0"]) == 2
    out = capsys.readouterr()
    assert out.err == f"nextstep: error: {err.value}\n"
    if "SECRET" in var or "PASSWORD" in var:
        assert "(got" not in out.err  # a secret's value is never printed
    assert ":pw@" not in out.err  # nor a database password


def test_a_value_is_shown_unless_it_is_secret(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("NEXTSTEP_PUBLIC_URL", "nope")
    with pytest.raises(ConfigError, match=r"\(got 'nope'\)$"):
        load_settings()
    clean_env.delenv("NEXTSTEP_PUBLIC_URL")
    clean_env.setenv("NEXTSTEP_DATABASE_URL", "postgresql+asyncpg://u:hunter2@db/x")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "hunter2" not in str(err.value) and "u:***@db" in str(err.value)


def test_several_bad_settings_are_all_named_on_the_line(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("NEXTSTEP_PUBLIC_URL", "nope")
    clean_env.setenv("NEXTSTEP_LOG_LEVEL", "LOUD")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "NEXTSTEP_PUBLIC_URL: " in str(err.value) and "; NEXTSTEP_LOG_LEVEL: " in str(err.value)


def test_defaults_match_the_contract(clean_env: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert s.database_url == "sqlite:///./nextstep.db"
    assert s.api_keys == ()
    assert s.public_url == "http://127.0.0.1:8000"
    assert s.google_api_root == "https://www.googleapis.com/"
    assert s.graph_api_root == "https://graph.microsoft.com/v1.0"
    assert s.secret_key == () and s.smtp_from == "" and s.max_body_bytes == 1048576
    clean_env.setenv("NEXTSTEP_MS_TENANT_ID", "contoso")
    clean_env.setenv("NEXTSTEP_MS_CLIENT_ID", "id")
    clean_env.setenv("NEXTSTEP_MS_CLIENT_SECRET", "secret")
    clean_env.setenv("NEXTSTEP_API_KEYS", "a, b ,,c")
    clean_env.setenv("NEXTSTEP_INTERNAL_DOMAINS", "Seller.io,@other.com")
    s = load_settings()
    assert s.ms_authority_url == "https://login.microsoftonline.com/contoso"
    assert s.api_keys == ("a", "b", "c")
    assert s.internal_domains == ("seller.io", "other.com")


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("postgresql://u:p%40ss@db:5432/x", "postgresql+psycopg://u:p%40ss@db:5432/x"),
        ("postgres://u@db/x", "postgresql+psycopg://u@db/x"),
        (
            "postgresql+psycopg://u@db/x?sslmode=require",
            "postgresql+psycopg://u@db/x?sslmode=require",
        ),
        ("sqlite:///./here.db", "sqlite:///./here.db"),
    ],
)
def test_database_urls_psycopg_is_the_postgresql_driver(
    clean_env: pytest.MonkeyPatch, given: str, kept: str
) -> None:
    clean_env.setenv("NEXTSTEP_DATABASE_URL", given)
    assert load_settings().database_url == kept


def test_lenient_spellings_are_normalised(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("NEXTSTEP_LOG_LEVEL", "warn")
    clean_env.setenv("NEXTSTEP_GOOGLE_API_ROOT", "http://127.0.0.1:9/")
    clean_env.setenv("NEXTSTEP_SMTP_HOST", "mail.seller.io")
    clean_env.setenv("NEXTSTEP_SMTP_FROM", " nextstep@seller.io ")
    s = load_settings()
    assert s.log_level == "WARNING" and s.smtp_from == "nextstep@seller.io"
    clean_env.setenv("NEXTSTEP_GOOGLE_API_ROOT", "http://127.0.0.1:9")
    assert load_settings().google_api_root == "http://127.0.0.1:9/"


# --- warnings ---------------------------------------------------------------------------


def _events(settings: Settings, environ: dict[str, str]) -> dict[str, dict[str, str]]:
    return {
        w.fields.get("variable", w.event): {"event": w.event, "detail": w.detail, **w.fields}
        for w in startup_warnings(settings, environ)
    }


def test_an_unknown_variable_is_a_warning_with_the_closest_name(
    clean_env: pytest.MonkeyPatch,
) -> None:
    settings = load_settings(internal_domains="seller.io", api_keys="k")
    found = _events(
        settings,
        {
            "NEXTSTEP_API_KEY": "x",
            "NEXTSTEP_DATABSE_URL": "x",
            "nextstep_pol_seconds": "1",
            "NEXTSTEP_FROBNICATE": "1",
            "PATH": "/bin",
        },
    )
    assert set(found) == {
        "NEXTSTEP_API_KEY",
        "NEXTSTEP_DATABSE_URL",
        "nextstep_pol_seconds",
        "NEXTSTEP_FROBNICATE",
    }
    assert found["NEXTSTEP_API_KEY"]["suggestion"] == "NEXTSTEP_API_KEYS"
    assert found["NEXTSTEP_API_KEY"]["detail"].endswith("did you mean NEXTSTEP_API_KEYS?")
    assert found["NEXTSTEP_DATABSE_URL"]["suggestion"] == "NEXTSTEP_DATABASE_URL"
    assert found["nextstep_pol_seconds"]["suggestion"] == "NEXTSTEP_POLL_SECONDS"
    assert found["NEXTSTEP_FROBNICATE"]["suggestion"] == ""
    assert "did you mean" not in found["NEXTSTEP_FROBNICATE"]["detail"]


def test_known_names_include_every_documented_variable(clean_env: pytest.MonkeyPatch) -> None:
    documented = [
        "NEXTSTEP_SECRET_KEY",
        "NEXTSTEP_CLOCK",
        "NEXTSTEP_ADMIN_EMAIL",
        "NEXTSTEP_ADMIN_EMAILS",
        "NEXTSTEP_SLACK_BOT_TOKEN",
        "NEXTSTEP_SLACK_API_ROOT",
        "NEXTSTEP_TEAMS_WEBHOOK_URL",
        "NEXTSTEP_HUBSPOT_TOKEN",
        "NEXTSTEP_HUBSPOT_API_ROOT",
        "NEXTSTEP_SALESFORCE_INSTANCE_URL",
        "NEXTSTEP_SALESFORCE_CLIENT_ID",
        "NEXTSTEP_SALESFORCE_CLIENT_SECRET",
        "NEXTSTEP_RETENTION_DAYS",
        "NEXTSTEP_MAX_BODY_BYTES",
    ]
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    names = re.findall(r"NEXTSTEP_[A-Z0-9_]+\*?(?:\(S\))?", readme)
    in_readme = {n.removesuffix("(S)") for n in names if not n.endswith("*")}
    in_readme.discard("NEXTSTEP_API_KEY")  # the README's example of an unknown name
    known = known_variables()
    assert set(documented) <= known
    tools = {"NEXTSTEP_TEST_POSTGRES_URL", "NEXTSTEP_TEST_CRASH_AT", "NEXTSTEP_CHECK_SKIP_INSTALL"}
    assert in_readme - tools <= known
    settings = load_settings(internal_domains="seller.io", api_keys="k")
    environ = dict.fromkeys([*documented, *tools, "NEXTSTEP_BENCH_POSTGRES_URL"], "x")
    assert startup_warnings(settings, environ) == []


def test_missing_internal_domains_and_api_keys_are_warnings(clean_env: pytest.MonkeyPatch) -> None:
    found = _events(load_settings(), {})
    assert (
        "a 1:1 with your own manager would be tracked as a prospect meeting"
        in (found["NEXTSTEP_INTERNAL_DOMAINS"]["detail"])
    )
    assert found["NEXTSTEP_INTERNAL_DOMAINS"]["event"] == "config.internal_domains_missing"
    assert "401" in found["NEXTSTEP_API_KEYS"]["detail"]


# --- through a real process -------------------------------------------------------------


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith("NEXTSTEP_")}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _one_error_line(r: subprocess.CompletedProcess[str]) -> str:
    """The error line; anything else on stderr is a JSON log line written before it."""
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    for line in lines[:-1]:
        assert json.loads(line)["level"] in ("info", "warning"), r.stderr
    assert lines[-1].startswith("nextstep: error: ")
    return lines[-1].removeprefix("nextstep: error: ")


def test_warnings_are_json_log_lines_and_start_up_goes_on(tmp_path: Path) -> None:
    r = _run(
        ["migrate"],
        {"NEXTSTEP_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite", "NEXTSTEP_API_KEY": "x"},
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "empty → " in r.stdout
    events = [json.loads(line) for line in r.stderr.strip().splitlines()]
    by_event = {e["event"]: e for e in events}
    unknown = by_event["config.unknown_variable"]
    assert unknown["level"] == "warning" and unknown["suggestion"] == "NEXTSTEP_API_KEYS"
    assert "did you mean NEXTSTEP_API_KEYS?" in unknown["detail"]
    assert by_event["config.internal_domains_missing"]["level"] == "warning"


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_a_bad_setting_stops_the_process_with_one_line(tmp_path: Path, command: str) -> None:
    r = _run([command], {**QUIET, "NEXTSTEP_LOG_LEVEL": "LOUD"}, tmp_path)
    assert len(r.stderr.splitlines()) == 1  # nothing is logged before the settings are read
    assert _one_error_line(r) == (
        "NEXTSTEP_LOG_LEVEL: 'LOUD' is not a log level "
        "(DEBUG, INFO, WARNING, ERROR, CRITICAL) (got 'LOUD')"
    )
    r = _run([command], {**QUIET, "NEXTSTEP_DATABASE_URL": "sqlite:////nope/dir/x.db"}, tmp_path)
    assert _one_error_line(r).startswith("NEXTSTEP_DATABASE_URL: folder '/nope/dir' ")


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_an_unreachable_postgresql_is_one_line(tmp_path: Path, command: str) -> None:
    url = "postgresql+psycopg://nobody:hunter2@127.0.0.1:1/none"
    env = {**QUIET, "NEXTSTEP_DATABASE_URL": url, "NEXTSTEP_SECRET_KEY": TEST_SECRET_KEY}
    line = _one_error_line(_run([command], env, tmp_path))
    assert line.startswith("NEXTSTEP_DATABASE_URL: cannot use the database ")
    assert "127.0.0.1" in line and "hunter2" not in line


def test_an_unwritable_sqlite_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "db.sqlite").mkdir()  # a folder where the file should be
    env = {**QUIET, "NEXTSTEP_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite"}
    line = _one_error_line(_run(["migrate"], env, tmp_path))
    assert line.startswith("NEXTSTEP_DATABASE_URL: cannot use the database ")


def test_serve_refuses_a_bad_setting_with_one_clear_line(tmp_path: Path) -> None:
    r = _run(["serve", "--port", "0"], {"NEXTSTEP_PUBLIC_URL": "nope"}, tmp_path)
    assert len(r.stderr.splitlines()) == 1
    assert _one_error_line(r) == (
        "NEXTSTEP_PUBLIC_URL: must start with http:// or https:// (got 'nope')"
    )


POLICY = """policies:
  - name: x
    invite_within: PT2H
    accept_within: P2D
    horizon: {horizon}
    follow_up_duration: PT15M
    escalate_after: P3D
"""


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("policies:\n  - name: x\n    invite_within: 2 hours\n", "invite_within: '2 hours'"),
        (POLICY.format(horizon="P9999999D"), "horizon: 'P9999999D' is too long (at most P366D)"),
        (POLICY.format(horizon="P99999999999D"), "horizon: 'P99999999999D' is too long"),
        (POLICY.format(horizon="PT99999999999999999999H"), "is too long (at most P366D)"),
        (None, "cannot read policy file"),
    ],
)
def test_serve_refuses_a_bad_policy_file_naming_file_and_key(
    tmp_path: Path, text: str | None, says: str
) -> None:
    policy = tmp_path / "p.yaml"
    if text is None:
        policy.write_bytes(b"policies: \xff\xfe\n")  # not UTF-8
    else:
        policy.write_text(text)
    env = {
        **QUIET,
        "NEXTSTEP_POLICY_FILE": str(policy),
        "NEXTSTEP_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite",
    }
    line = _one_error_line(_run(["serve"], env, tmp_path))
    assert line.startswith(f"{policy}: ") and says in line


def test_migrate_then_serve_on_postgres_refuses_an_outdated_schema(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    from app.db import migrate
    from tests.conftest import postgres_url

    base = postgres_url()
    engine = create_engine(base)
    schema = f"cli_migrate_{uuid.uuid4().hex[:12]}"  # its own: suites may run side by side
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    head = migrate.head_revision(engine)  # the newest migration's revision
    env = {**QUIET, "NEXTSTEP_DATABASE_URL": url, "NEXTSTEP_SECRET_KEY": TEST_SECRET_KEY}
    try:
        line = _one_error_line(_run(["serve", "--port", "0"], env, tmp_path))
        assert "nextstep migrate" in line and head in line
        r = _run(["migrate"], env, tmp_path)
        assert r.returncode == 0, r.stderr
        assert f"empty → {head}" in r.stdout
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE {schema}.alembic_version SET version_num = '9999'"))
        line = _one_error_line(_run(["serve", "--port", "0"], env, tmp_path))
        assert "9999" in line and "newer" in line
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()


def test_an_unreadable_ca_bundle_stops_start_up_naming_the_variable(tmp_path: Path) -> None:
    r = _run(
        ["serve", "--port", "0"],
        {
            **QUIET,
            "NEXTSTEP_NUDGE_WEBHOOK_URL": "https://crm.example/hook",
            "NEXTSTEP_NUDGE_WEBHOOK_SECRET": "s",
            "NEXTSTEP_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite",
            "REQUESTS_CA_BUNDLE": str(tmp_path / "missing.pem"),
        },
        tmp_path,
    )
    line = _one_error_line(r)
    assert line.startswith("REQUESTS_CA_BUNDLE=") and "missing.pem" in line


def test_generate_secret_key_prints_a_key_the_setting_takes(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["generate-secret-key"]) == 0
    key = capsys.readouterr().out.strip()
    clean_env.setenv("NEXTSTEP_SECRET_KEY", key)
    assert load_settings().secret_key == (key,)
