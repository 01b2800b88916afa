"""Database plumbing of the service: Alembic migrations over ``dte_core.storage.metadata``."""
