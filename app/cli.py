"""The `nextstep` command: serve, migrate, demo, generate-secret-key.

A setting, file or database that stops start-up is one line on stderr,
``nextstep: error: <variable or file>: <reason>``, and exit status 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from app import logs
from app.config import Settings, load_settings, startup_warnings
from app.db import migrate
from app.db.engine import make_engine
from app.demo import run_demo
from app.errors import ConfigError, PolicyError
from app.main import build_runtime, close_runtime, create_app
from app.secrets import generate_key, key_file_for, load_key_ring

log = logging.getLogger("app.cli")


def _fail(message: str) -> int:
    print(f"nextstep: error: {message}", file=sys.stderr)
    return 2


@contextmanager
def database_errors(database_url: str) -> Iterator[None]:
    """A database that cannot be reached or opened is a ConfigError naming the variable."""
    try:
        yield
    except DBAPIError as err:
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()
        where = make_url(database_url).render_as_string(hide_password=True)
        raise ConfigError(
            f"NEXTSTEP_DATABASE_URL: cannot use the database {where}: "
            f"{reason[0] if reason else type(err).__name__}"
        ) from err


def _start(settings: Settings) -> None:
    """JSON logs at the configured level, then one warning line per doubtful setting."""
    logs.setup(settings.log_level)
    for warning in startup_warnings(settings, os.environ):
        warning.log(log)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = load_settings()
    _start(settings)
    with database_errors(settings.database_url):
        runtime = build_runtime(settings)  # fails fast: schema, policy file, providers, keys
    app = create_app(settings, runtime=runtime)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            # SIGTERM: from now on /readyz fails and the jobs take no more work, while
            # open HTTP requests get up to half the grace period; then the lifespan gives
            # claimed background work the other half (app/main.py) and releases the rest.
            runtime.stopping = True
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds / 2)),
    )
    try:
        Server(config).run()
    finally:
        asyncio.run(close_runtime(runtime))
    return 0


def cmd_migrate(_: argparse.Namespace) -> int:
    settings = load_settings()
    _start(settings)
    # Migration 0003 encrypts stored channel tokens with the key ring; a PostgreSQL database
    # without NEXTSTEP_SECRET_KEY migrates as long as it has none to encrypt (it says so).
    keys = (
        load_key_ring(settings.secret_key, settings.database_url)
        if settings.secret_key or key_file_for(settings.database_url)
        else None
    )
    engine = make_engine(settings.database_url)
    try:
        with database_errors(settings.database_url):
            before = migrate.current_revision(engine)
            after = migrate.upgrade(engine, keys)
    finally:
        engine.dispose()
    print(f"database schema: {before or 'empty'} → {after}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    return run_demo(verbose=args.verbose)


def cmd_generate_secret_key(_: argparse.Namespace) -> int:
    print(generate_key())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="nextstep",
        description="The meeting is not over until the follow-up invite is accepted.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP API, provider webhooks and scheduler")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)
    mig = sub.add_parser("migrate", help="bring the database schema up to date")
    mig.set_defaults(func=cmd_migrate)
    demo = sub.add_parser("demo", help="a scripted sales week on the sandbox provider")
    demo.add_argument("--verbose", action="store_true", help="also print state changes")
    demo.set_defaults(func=cmd_demo)
    keygen = sub.add_parser(
        "generate-secret-key", help="print a new key for NEXTSTEP_SECRET_KEY (base64, 32 bytes)"
    )
    keygen.set_defaults(func=cmd_generate_secret_key)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, PolicyError) as err:
        return _fail(str(err))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
