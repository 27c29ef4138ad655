"""Alembic environment: the engine comes from app.db.migrate, never from an ini file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from app.db.models import Base

config = context.config
engine = config.attributes["engine"]
sqlite = engine.dialect.name == "sqlite"


def _pragma(connection: Connection, statement: str) -> None:
    """Run ``statement`` on the driver's connection, outside any transaction (the engine
    opens every SQLAlchemy transaction with BEGIN IMMEDIATE)."""
    connection.connection.driver_connection.execute(statement)  # type: ignore[union-attr]


with engine.connect() as connection:
    if sqlite:
        # Batch mode rebuilds a table (copy, drop, rename) to alter it; with foreign keys
        # on, dropping the old table would cascade into every row that points at it (the
        # meetings and channels of a rebuilt reps table). SQLite ignores this pragma inside
        # a transaction, so it goes first, before the migration's transaction.
        _pragma(connection, "PRAGMA foreign_keys=OFF")
    try:
        with connection.begin():
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                render_as_batch=sqlite,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        if sqlite:
            _pragma(connection, "PRAGMA foreign_keys=ON")
