"""Use cases: each has a deterministic local engine that needs no network or key and returns
the envelope of :mod:`ai_service.usecases.common`; an LLM client is optional.

Modules import numpy and scikit-learn; nothing is imported here so that the package stays
cheap to import."""
