"""ai_service: the FastAPI service and CLI around dte_core, for Odoo widgets and batch jobs."""
