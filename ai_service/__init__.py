"""ai_service: the FastAPI service and CLI around dte_core, used by Odoo's widgets and batch jobs."""
