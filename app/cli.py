"""The `nextstep` command: serve, migrate, demo."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import uvicorn

from app import logs
from app.config import load_settings
from app.db import migrate
from app.db.engine import make_engine
from app.demo import run_demo
from app.errors import ConfigError, PolicyError
from app.main import build_runtime, close_runtime, create_app


def _fail(message: str) -> int:
    print(f"nextstep: error: {message}", file=sys.stderr)
    return 2


def cmd_serve(args: argparse.Namespace) -> int:
    settings = load_settings()
    logs.setup(settings.log_level)
    runtime = build_runtime(settings)  # fails fast: schema, policy file, providers
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
    engine = make_engine(settings.database_url)
    try:
        before = migrate.current_revision(engine)
        after = migrate.upgrade(engine)
    finally:
        engine.dispose()
    print(f"database schema: {before or 'empty'} → {after}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    return run_demo(verbose=args.verbose)


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
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, PolicyError) as err:
        return _fail(str(err))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
