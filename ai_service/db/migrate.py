"""Programmatic Alembic: upgrade a database to the current schema from any working directory."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def target_metadata() -> MetaData:
    """The complete schema Alembic compares against: dte_core's tables plus the service's."""
    # >>> Every module that defines tables on dte_core.storage.metadata is imported here, so
    # >>> autogenerate and the migration test see them. Add new table modules here. <<<
    import ai_service.db.context_tables
    import ai_service.db.job_tables
    import ai_service.db.outbox_tables
    import ai_service.db.tables  # noqa: F401
    from dte_core.storage import metadata

    return metadata


def alembic_config(url: str) -> Config:
    """An Alembic Config built in code (no alembic.ini needed), pointing at ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    # Passed as an attribute, not a main option: ConfigParser would try to interpolate a
    # percent-encoded password in the URL.
    config.attributes["url"] = url
    return config


def upgrade_to_head(url: str) -> None:
    """Bring the database at ``url`` to the newest schema; safe to run concurrently."""
    command.upgrade(alembic_config(url), "head")


def downgrade_to_base(url: str) -> None:
    """Drop everything the migrations created (tests and disposable environments only)."""
    command.downgrade(alembic_config(url), "base")
