"""Engine construction for the service and the CLI.

The service uses SQLAlchemy Core with short transactions (``engine.begin()`` per operation).
A request never holds a transaction while calling ``FolioStore``: on SQLite every write
transaction takes the database lock, and a nested one would wait on itself.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from ai_service.settings import Settings


def ensure_sqlite_dir(url: str) -> None:
    """SQLite creates the file but not its directory (the default lives under data_dir)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def engine_for(settings: Settings) -> Engine:
    from dte_core.storage import create_engine_for

    ensure_sqlite_dir(settings.database_url)
    return create_engine_for(settings.database_url)


def migrate(settings: Settings) -> None:
    from ai_service.db.migrate import upgrade_to_head

    ensure_sqlite_dir(settings.database_url)
    upgrade_to_head(settings.database_url)


def reading(engine: Engine) -> Connection:
    """A connection for read-only work; on SQLite it does not queue behind writers."""
    return engine.connect().execution_options(sqlite_deferred=True)


def ping(engine: Engine) -> None:
    with reading(engine) as conn:
        conn.execute(text("SELECT 1"))
