"""Received documents come in here: API uploads, a mailbox folder and an IMAP inbox all go
through :class:`ai_service.ingest.service.Ingestor`."""
