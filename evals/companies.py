"""The synthetic companies the datasets are drawn from, regenerated from their seed.

A case names its company (``meta.company``); the engine it is evaluated with is built from that
company's context as of the dataset's split. Contexts are not stored (they are megabytes);
:data:`CONTEXT_SHA256` pins what they must hash to, so a change in ``ai_service.synth`` that
would silently change what the cases mean fails loudly instead.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from ai_service.context.models import CompanyContext
from ai_service.synth import SyntheticCompany, SyntheticInvoice, generate_company

#: never used to tune an engine (the use-case tests hold out 20261; tuning used 1-3)
SEED = 5150
KINDS = ("construction", "restaurant", "it_services")
#: share of each company's stream the engines know; the rest is what they are evaluated on
SPLIT = 0.7
#: what each regenerated company must hash to (:func:`context_sha256`)
CONTEXT_SHA256 = {
    "construction": "26addfbd2541d85669d6a667938de3539e4faee385cc21bc2f015f17b7097e44",
    "restaurant": "7a804f31d03086b7f2742d506a7f859faf5591812a3899d20274af1c8c016721",
    "it_services": "ce8de4eb79707f890395941eeba8f66083ccfdb694e579c84bb4450e5c7a3d2b",
}


@lru_cache(maxsize=8)
def company(kind: str) -> SyntheticCompany:
    if kind not in KINDS:
        raise ValueError(f"unknown eval company {kind!r}; known: {', '.join(KINDS)}")
    return generate_company(kind, SEED)


@lru_cache(maxsize=8)
def _split(kind: str) -> tuple[CompanyContext, tuple[SyntheticInvoice, ...]]:
    context, future = company(kind).split(SPLIT)
    return context, tuple(future)


def past_context(kind: str) -> CompanyContext:
    """What Odoo held when the evaluated documents arrived."""
    return _split(kind)[0]


def future_documents(kind: str) -> tuple[SyntheticInvoice, ...]:
    return _split(kind)[1]


def full_context(kind: str) -> CompanyContext:
    """Odoo at the end of the period (what chat answers from)."""
    return company(kind).context


@lru_cache(maxsize=8)
def context_sha256(kind: str) -> str:
    return hashlib.sha256(company(kind).model_dump_json().encode()).hexdigest()
