"""Held-out evaluation data: engines were tuned on seeds 1-3; these seeds were never looked at."""

from __future__ import annotations

import pytest

from ai_service.synth import SyntheticCompany, generate_company

EVAL_SEED = 20261
KINDS = ("construction", "restaurant", "it_services")


@pytest.fixture(scope="session")
def companies() -> dict[str, SyntheticCompany]:
    return {kind: generate_company(kind, EVAL_SEED) for kind in KINDS}
