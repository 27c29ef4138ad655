"""The whole database as text, the way an operator backs it up: SQLite's ``.dump``
(``iterdump``) and PostgreSQL's ``pg_dump`` of the test's schema."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path
from urllib.parse import unquote

from sqlalchemy.engine import make_url

PG_DUMP = next(
    (
        p
        for p in ("/usr/lib/postgresql/15/bin/pg_dump", shutil.which("pg_dump"))
        if p and Path(p).exists()
    ),
    None,
)


def dump(database_url: str) -> str:
    """Every row and definition of the database behind ``database_url``."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database
        conn = sqlite3.connect(url.database)
        try:
            return "\n".join(conn.iterdump())
        finally:
            conn.close()
    assert PG_DUMP, "pg_dump is not installed (postgresql-client)"
    options = unquote(str(url.query.get("options", "")))
    schema = options.partition("search_path=")[2] or "public"
    plain = url.set(drivername="postgresql", query={})
    out = subprocess.run(
        [PG_DUMP, "--no-owner", "--schema", schema, plain.render_as_string(hide_password=False)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout
