"""pytest plugin: every database test runs on SQLite and on PostgreSQL.

``db_url`` gives each test a database of its own: a fresh SQLite file, or a freshly created
PostgreSQL database on the server named by ``DTE_AI_TEST_POSTGRES_URL`` (dropped afterwards).
The PostgreSQL variant is skipped when that variable is unset, and fails loudly when it is set
but the server cannot be reached: a configured database that silently vanishes from the suite
would hide exactly the concurrency bugs it is there to catch.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from ai_service.db.migrate import upgrade_to_head
from dte_core.storage import create_engine_for

POSTGRES_ENV = "DTE_AI_TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dte-test.db'}"
        return
    yield from _postgres_database()


def _postgres_database() -> Iterator[str]:
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(
            f"{POSTGRES_ENV} is not set; set it (e.g. "
            "postgresql+psycopg://postgres@127.0.0.1:5432/test) to run the PostgreSQL variant"
        )
    base_url = make_url(base)
    shown = base_url.render_as_string(hide_password=True)
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    name = f"t_{uuid.uuid4().hex[:20]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except DBAPIError as exc:
        admin.dispose()
        pytest.fail(f"{POSTGRES_ENV}={shown} is set but unusable: {exc.orig}", pytrace=False)
    try:
        yield base_url.set(database=name).render_as_string(hide_password=False)
    finally:
        # FORCE: a test that leaked a connection (or a killed worker process) must not leave
        # the database behind.
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def migrated_engine(db_url: str) -> Iterator[Engine]:
    """An Engine on ``db_url`` after ``alembic upgrade head`` (the real migrations)."""
    upgrade_to_head(db_url)
    engine = create_engine_for(db_url)
    try:
        yield engine
    finally:
        engine.dispose()
