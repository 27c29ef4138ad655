"""Alembic, driven from code: `nextstep migrate`, and the start-up schema check."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from app.errors import SchemaOutdated
from app.secrets import KeyRing

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(engine: Engine, keys: KeyRing | None = None) -> Config:
    """Alembic's config on ``engine``; ``keys`` for migrations that encrypt stored values."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    cfg.attributes["keys"] = keys
    return cfg


def head_revision(engine: Engine) -> str:
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, keys: KeyRing | None = None) -> str:
    """Bring the schema to head; returns the revision now in place.

    ``keys`` encrypts secrets a migration moves to encrypted columns (only needed when
    such rows exist: an empty database migrates without it).
    """
    command.upgrade(alembic_config(engine, keys), "head")
    return head_revision(engine)


def check_schema(engine: Engine) -> None:
    """Refuse an outdated or newer schema, naming both revisions."""
    script = ScriptDirectory.from_config(alembic_config(engine))
    head = script.get_current_head()
    current = current_revision(engine)
    if current == head:
        return
    if current is None:
        raise SchemaOutdated(
            f"database schema is empty; this version needs revision {head}: run `nextstep migrate`"
        )
    known = {rev.revision for rev in script.walk_revisions()}
    if current not in known:
        raise SchemaOutdated(
            f"database schema is at revision {current}, newer than this version "
            f"(head {head}): upgrade NextStep, do not downgrade the database"
        )
    raise SchemaOutdated(
        f"database schema is at revision {current}, this version needs {head}: "
        "run `nextstep migrate`"
    )
