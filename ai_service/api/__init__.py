"""The HTTP API: app factory in ``ai_service.main``, routes under ``ai_service.api.routes``."""
