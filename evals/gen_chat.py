"""Chat cases: questions about a company's Odoo records whose answer must cite that record, SII
questions that must cite the knowledge base (hand-written hard cases), and questions nothing
answers, which must be refused."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from evals import companies
from evals.cases import Case

UNANSWERABLE = (
    "¿Cuál es la contraseña del correo del gerente?",
    "¿Quién ganó el partido de fútbol del domingo?",
    "¿Qué tiempo hará mañana en Valparaíso?",
    "Recomiéndame una película para el fin de semana",
    "¿Cuál es la capital de Mongolia?",
    "Escribe un poema sobre el mar",
)


def _cases_for(kind: str, rng: random.Random) -> Iterator[tuple[str, str, list[str], list[str]]]:
    """(slug, question, required source ids, tags)."""
    context = companies.full_context(kind)
    suppliers = sorted(context.suppliers, key=lambda s: str(s.rut))
    for s in rng.sample(suppliers, min(20, len(suppliers))):
        yield (
            f"supplier-{s.rut}",
            f"¿Cuál es el RUT del proveedor {s.name}?",
            [f"company:supplier:{s.rut}"],
            ["supplier"],
        )
    for p in context.projects:
        yield (
            f"project-{p.code}",
            f"¿Cuál es la dirección del proyecto {p.name}?",
            [f"company:project:{p.code}"],
            ["project"],
        )
    for a in context.accounts:
        yield (
            f"account-{a.code}",
            f"¿Qué es la cuenta de gasto {a.code}?",
            [f"company:account:{a.code}"],
            ["account"],
        )
    orders = sorted(context.purchase_orders, key=lambda o: o.number)
    for po in rng.sample(orders, min(60, len(orders))):
        yield (
            f"po-{po.number}",
            f"¿Qué incluye la orden de compra {po.number}?",
            [f"company:purchase_order:{po.number}"],
            ["purchase_order"],
        )


def chat_cases() -> Iterator[Case]:
    rng = random.Random("dte-ai-evals:chat")  # noqa: S311 - data, not secrets
    for kind in companies.KINDS:
        for slug, question, required, tags in _cases_for(kind, rng):
            yield Case(
                id=f"chat:{kind}:{slug}",
                input={"question": question},
                expected={"answerable": True, "required_citations": required},
                meta={"company": kind, "split": "test", "tags": tags},
            )
        for n, question in enumerate(UNANSWERABLE):
            yield Case(
                id=f"chat:{kind}:unanswerable-{n}",
                input={"question": question},
                expected={"answerable": False, "required_citations": []},
                meta={"company": kind, "split": "test", "tags": ["unanswerable"]},
            )


def chat_hard_cases(specs: list[dict[str, Any]]) -> Iterator[Case]:
    for spec in specs:
        yield Case(
            id=spec["id"],
            input={"question": spec["question"]},
            expected={
                "answerable": spec.get("answerable", True),
                "required_citations": spec.get("required_citations", []),
            },
            meta={
                "company": spec.get("company", ""),
                "split": "hard",
                "tags": spec.get("tags", []),
            },
        )
