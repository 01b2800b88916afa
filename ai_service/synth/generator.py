"""Seeded generator of a company's received invoices, purchase orders, receipts and the
accountant's decisions, with labelled anomalies. Same seed, same data: every random choice comes
from one ``random.Random`` seeded with a string (hashed with SHA-512, independent of
PYTHONHASHSEED). See docs/synthetic-data.md."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_FLOOR, Decimal

from ai_service.context.models import (
    Project,
    PurchaseOrder,
    PurchaseOrderLine,
    ReceiptLine,
)
from ai_service.synth import catalog_construction, catalog_it, catalog_restaurant
from ai_service.synth.anomalies import inject_anomalies
from ai_service.synth.documents import freeze_documents, odoo_context
from ai_service.synth.labels import (
    SyntheticCompany,
    SyntheticDataset,
)
from ai_service.synth.specs import CompanyKindSpec, ProductSpec, ProjectSpec, SupplierSpec, make_rut
from ai_service.synth.wording import WritingStyle, strip_accents
from dte_core.rut import Rut

KINDS: dict[str, CompanyKindSpec] = {
    spec.kind: spec
    for spec in (catalog_construction.SPEC, catalog_restaurant.SPEC, catalog_it.SPEC)
}
DEFAULT_START = date(2025, 1, 1)


def generate_dataset(
    seed: int, kinds: tuple[str, ...] = tuple(KINDS), **options: object
) -> SyntheticDataset:
    return SyntheticDataset(
        seed=seed,
        companies=[generate_company(kind, seed, **options) for kind in kinds],  # type: ignore[arg-type]
    )


def generate_company(
    kind: str,
    seed: int,
    *,
    n_invoices: int = 600,
    start: date = DEFAULT_START,
    months: int = 18,
    anomaly_rate: float = 0.05,
) -> SyntheticCompany:
    """One company of ``kind`` (see :data:`KINDS`) with about ``n_invoices`` received documents
    over ``months`` months from ``start``; ``anomaly_rate`` of them carry an injected anomaly."""
    if kind not in KINDS:
        raise ValueError(f"unknown company kind {kind!r}; choose one of {sorted(KINDS)}")
    spec = KINDS[kind]
    world = _World(spec, seed, start, months)
    world.simulate(n_invoices)
    documents = freeze_documents(world)
    documents = inject_anomalies(world, documents, anomaly_rate)
    documents.sort(key=lambda d: (d.received_at, d.id))
    return SyntheticCompany(
        kind=kind, seed=seed, context=odoo_context(world, documents), documents=documents
    )


@dataclass
class _SupplierState:
    spec: SupplierSpec
    rut: Rut
    style: WritingStyle
    price_factor: float
    project_affinity: list[float]
    item_names: dict[str, str] = field(default_factory=dict)


@dataclass
class _Draft:
    """An invoice before folios are given out (they follow the emission date)."""

    supplier: _SupplierState
    fecha: date
    project: ProjectSpec
    lines: list[tuple[ProductSpec, Decimal, Decimal, str | None]]  # product, qty, price, dsc
    po: PurchaseOrder | None = None
    receipt_index: int | None = None
    tipo_dte: int = 33
    credit_of: int | None = None  # index of the draft a nota de crédito corrects


class _World:
    """The company's year: suppliers, prices over time, projects, purchase orders."""

    def __init__(self, spec: CompanyKindSpec, seed: int, start: date, months: int) -> None:
        self.spec, self.seed, self.start, self.months = spec, seed, start, months
        self.rng = random.Random(f"dte-ai-synth:{seed}:{spec.kind}")  # noqa: S311 - data, not secrets
        self.end = _add_months(start, months) - timedelta(days=1)
        self.company_rut = make_rut(self.rng)
        self.projects = [self._project(p) for p in spec.projects]
        self.suppliers = [self._supplier(s) for s in spec.suppliers]
        # prices drift month to month per product: inflation plus occasional list-price changes
        self.drift: dict[str, list[float]] = {}
        for product in spec.products:
            level, path = 1.0, []
            for _ in range(months + 1):
                path.append(level)
                level *= 1 + self.rng.uniform(0.0, 0.012)
                if self.rng.random() < 0.06:
                    level *= self.rng.uniform(1.03, 1.10)
            self.drift[product.key] = path
        self.drafts: list[_Draft] = []
        self.pos: list[PurchaseOrder] = []
        self.receipts: list[tuple[str, date, PurchaseOrder, _SupplierState, list[ReceiptLine]]] = []
        self.folios: dict[tuple[str, int], int] = {}
        self.used_folios: set[tuple[str, int, int]] = set()
        self.guia_by_receipt: dict[int, int] = {}

    # --- master data ---------------------------------------------------------------------------

    def _project(self, p: ProjectSpec) -> Project:
        return Project(
            code=p.code,
            name=p.name,
            address=p.address,
            comuna=p.comuna,
            client=p.client,
            start=_add_months(self.start, p.months[0]),
            end=_add_months(self.start, p.months[1]) - timedelta(days=1),
            budget=p.budget,
        )

    def _supplier(self, s: SupplierSpec) -> _SupplierState:
        # the same supplier has the same RUT in every company of one seed
        rut_rng = random.Random(f"dte-ai-synth:{self.seed}:supplier:{s.name}")  # noqa: S311
        high = s.name.endswith("S.A.")
        rut = make_rut(rut_rng, 96_500_000, 99_599_999) if high else make_rut(rut_rng)
        return _SupplierState(
            spec=s,
            rut=rut,
            style=WritingStyle.draw(self.rng),
            price_factor=self.rng.uniform(0.9, 1.15),
            project_affinity=[self.rng.uniform(0.2, 3.0) for _ in self.spec.projects],
        )

    def project_spec(self, code: str) -> ProjectSpec:
        return next(p for p in self.spec.projects if p.code == code)

    def price(self, supplier: _SupplierState, product: ProductSpec, day: date) -> Decimal:
        month = min((day.year - self.start.year) * 12 + day.month - self.start.month, self.months)
        value = product.price * supplier.price_factor * self.drift[product.key][max(month, 0)]
        return Decimal(round(value * self.rng.uniform(0.985, 1.015)))

    def item_name(self, supplier: _SupplierState, product: ProductSpec) -> str:
        """Each supplier's ERP has its own name for a product; now and then a clerk retypes it."""
        if product.key not in supplier.item_names:
            wording = self.rng.choice(product.names)
            supplier.item_names[product.key] = supplier.style.render(wording, self.rng)
        if self.rng.random() < 0.08:
            return supplier.style.render(self.rng.choice(product.names), self.rng)
        return supplier.item_names[product.key]

    # --- the flow of documents -----------------------------------------------------------------

    def simulate(self, n_invoices: int) -> None:
        weights = [s.spec.weight for s in self.suppliers]
        days = (self.end - self.start).days
        while len(self.drafts) < n_invoices:
            supplier = self.rng.choices(self.suppliers, weights)[0]
            day = self.start + timedelta(days=self.rng.randrange(days - 20))
            project = self._choose_project(supplier, day)
            if self.rng.random() < supplier.spec.uses_po:
                self._purchase(supplier, day, project)
            else:
                self.drafts.append(
                    _Draft(supplier, day, project, self._lines(supplier, day, project))
                )
            if self.rng.random() < 0.02 and self.drafts:
                self._credit_note(self.rng.randrange(len(self.drafts)))

    def _choose_project(self, supplier: _SupplierState, day: date) -> ProjectSpec:
        head = self.project_spec(self.spec.head_office)
        if supplier.spec.overhead or self.rng.random() < 0.05:
            return head
        active = [
            (p, w)
            for p, w, proj in zip(
                self.spec.projects, supplier.project_affinity, self.projects, strict=True
            )
            if p.code != self.spec.head_office and proj.active_on(day)
        ]
        if not active:
            return head
        return self.rng.choices([p for p, _ in active], [w for _, w in active])[0]

    def _lines(
        self, supplier: _SupplierState, day: date, project: ProjectSpec
    ) -> list[tuple[ProductSpec, Decimal, Decimal, str | None]]:
        spec = supplier.spec
        n = min(self.rng.randint(*spec.lines), len(spec.products))
        products = [self.spec.product(k) for k in self.rng.sample(spec.products, n)]
        lines = []
        for product in products:
            low, high = product.qty
            qty = Decimal(round(self.rng.uniform(low, high))) if high > low else Decimal(int(low))
            lines.append(
                (
                    product,
                    max(qty, Decimal(1)),
                    self.price(supplier, product, day),
                    self._describe(supplier, project),
                )
            )
        return lines

    def _describe(self, supplier: _SupplierState, project: ProjectSpec) -> str | None:
        if (
            project.code == self.spec.head_office
            or self.rng.random() >= supplier.spec.names_project
        ):
            return None
        alias = self.rng.choice(project.aliases or (project.name,))
        lead = self.rng.choice(
            ("Obra", "Proyecto", "Para", "Según contrato", "Centro de costo", "")
        )
        text = f"{lead} {alias}".strip()
        return strip_accents(text).upper() if supplier.style.upper else text

    def _purchase(self, supplier: _SupplierState, day: date, project: ProjectSpec) -> None:
        po_day = max(self.start, day - timedelta(days=self.rng.randint(3, 25)))
        lines = self._lines(supplier, po_day, project)
        number = f"45{self.rng.randint(10, 99)}{len(self.pos) + 1:06d}"
        po_lines = [
            PurchaseOrderLine(line_no=i, product=product.names[0], quantity=qty, unit_price=price)
            for i, (product, qty, price, _dsc) in enumerate(lines, start=1)
        ]
        # deliveries: one, or two partial ones; a fifth of orders never arrive in full
        parts = [Decimal(1)] if self.rng.random() < 0.55 else [Decimal("0.5"), Decimal("0.5")]
        if len(parts) == 2:
            first = Decimal(str(round(self.rng.uniform(0.3, 0.7), 2)))
            parts = [first, 1 - first]
        if self.rng.random() < 0.2:
            parts[-1] *= Decimal("0.6")
        received = [Decimal(0)] * len(lines)
        delivery_day = day
        receipts = []
        for part in parts:
            receipt_lines = []
            for i, line in enumerate(lines):
                qty = (line[1] * part).to_integral_value(rounding=ROUND_FLOOR)
                if qty > 0:
                    receipt_lines.append(ReceiptLine(po_line_no=i + 1, quantity=qty))
            if delivery_day > self.end:
                break  # still to arrive when the period ends
            if receipt_lines:
                receipts.append((delivery_day, receipt_lines))
                for rl in receipt_lines:
                    received[rl.po_line_no - 1] += rl.quantity
            delivery_day += timedelta(days=self.rng.randint(4, 20))
        po = PurchaseOrder(
            number=number,
            date=po_day,
            supplier_rut=supplier.rut,
            project_code=project.code,
            lines=[
                pl.model_copy(update={"quantity_received": received[i]})
                for i, pl in enumerate(po_lines)
            ],
        )
        self.pos.append(po)
        for when, receipt_lines in receipts:
            self.receipts.append(
                (f"REC/{len(self.receipts) + 1:05d}", when, po, supplier, receipt_lines)
            )
            invoiced = [
                (
                    lines[rl.po_line_no - 1][0],
                    rl.quantity,
                    lines[rl.po_line_no - 1][2],
                    lines[rl.po_line_no - 1][3],
                )
                for rl in receipt_lines
            ]
            invoice_day = min(when + timedelta(days=self.rng.randint(0, 8)), self.end)
            self.drafts.append(
                _Draft(
                    supplier,
                    invoice_day,
                    project,
                    invoiced,
                    po=po,
                    receipt_index=len(self.receipts) - 1,
                )
            )

    def _credit_note(self, index: int) -> None:
        target = self.drafts[index]
        if target.tipo_dte != 33:
            return
        product, qty, price, dsc = self.rng.choice(target.lines)
        back = max(Decimal(1), (qty * Decimal(str(self.rng.uniform(0.1, 0.5)))).to_integral_value())
        day = min(target.fecha + timedelta(days=self.rng.randint(2, 30)), self.end)
        self.drafts.append(
            _Draft(
                target.supplier,
                day,
                target.project,
                [(product, back, price, dsc)],
                tipo_dte=61,
                credit_of=index,
            )
        )

    def next_folio(self, rut: Rut, tipo: int) -> int:
        key = (str(rut), tipo)
        if key not in self.folios:
            self.folios[key] = self.rng.randint(1_000, 90_000)
        self.folios[key] += self.rng.randint(1, 40)  # the supplier invoices other clients too
        self.used_folios.add((str(rut), tipo, self.folios[key]))
        return self.folios[key]


def _add_months(day: date, months: int) -> date:
    total = day.month - 1 + months
    return date(day.year + total // 12, total % 12 + 1, 1)
