"""The Alembic migrations build exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from ai_service.db.migrate import downgrade_to_base, target_metadata, upgrade_to_head
from dte_core.storage import create_engine_for

ROOT = Path(__file__).resolve().parents[2]


def _tables(url: str) -> set[str]:
    engine = create_engine_for(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _diffs(url: str) -> list[object]:
    engine = create_engine_for(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, target_metadata()))
    finally:
        engine.dispose()


def test_upgrade_head_builds_exactly_the_declared_schema(db_url: str) -> None:
    upgrade_to_head(db_url)
    assert _tables(db_url) == set(target_metadata().tables) | {"alembic_version"}
    assert {"caf_ranges", "folio_allocations"} <= _tables(db_url)
    diffs = _diffs(db_url)
    assert diffs == [], f"migrations and metadata differ (write a migration): {diffs}"


def test_upgrade_is_idempotent_and_downgrade_to_base_removes_everything(db_url: str) -> None:
    upgrade_to_head(db_url)
    upgrade_to_head(db_url)
    downgrade_to_base(db_url)
    assert _tables(db_url) == {"alembic_version"}
    upgrade_to_head(db_url)  # and back up again
    assert _diffs(db_url) == []


def test_folio_uniqueness_is_enforced_by_the_migrated_schema(db_url: str) -> None:
    upgrade_to_head(db_url)
    engine = create_engine_for(db_url)
    try:
        uniques = {
            tuple(u["column_names"])
            for u in inspect(engine).get_unique_constraints("folio_allocations")
        }
    finally:
        engine.dispose()
    assert ("company_id", "rut_emisor", "tipo_dte", "folio") in uniques


def test_upgrade_works_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    upgrade_to_head(url)
    assert "caf_ranges" in _tables(url)


def test_alembic_cli_with_the_repository_ini(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {k: v for k, v in os.environ.items() if k != "DTE_AI_DATABASE_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"url={url}", "upgrade", "head"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert {"caf_ranges", "folio_allocations", "alembic_version"} <= _tables(url)
