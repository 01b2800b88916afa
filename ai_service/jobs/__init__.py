"""Batch classification of received invoices: jobs persisted in the database, run by Celery
workers on Redis or, with no broker configured, by the same task code in-process."""
