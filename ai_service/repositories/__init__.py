"""Data access for the service: SQLAlchemy Core, one short transaction per call, by company."""
