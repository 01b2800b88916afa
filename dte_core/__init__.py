"""dte_core: issue and ingest Chilean electronic tax documents (DTE) the SII accepts.

A library: it never imports FastAPI or an LLM SDK, and does no work at import time.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
