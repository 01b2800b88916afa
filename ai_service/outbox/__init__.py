"""Durable submission of issued documents to the SII: outbox, worker, webhooks."""
