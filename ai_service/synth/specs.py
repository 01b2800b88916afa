"""The shape of a company kind's catalogue: its chart of accounts, its suppliers and what they
sell, its projects. The catalogue modules hold only data in these shapes."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from dte_core.rut import Rut, check_digit


def make_rut(rng: random.Random, low: int = 76_000_000, high: int = 77_999_999) -> Rut:
    """A valid RUT (mod-11 check digit) drawn in ``low..high``: 76-77 M for SpA and Ltda., 96 M+
    for older sociedades anónimas."""
    number = rng.randint(low, high)
    return Rut(number, check_digit(number))


@dataclass(frozen=True)
class ProductSpec:
    key: str
    account: str  # ExpenseAccount.code the accountant books it to
    names: tuple[str, ...]  # wordings seen on invoices; a supplier keeps one of them
    unit: str
    price: int  # net unit price in CLP at the start of the period
    qty: tuple[float, float] = (1, 1)  # typical quantity range
    #: words a supplier may add in DscItem
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class SupplierSpec:
    name: str
    giro: str
    products: tuple[str, ...]
    weight: float = 1.0  # relative invoice frequency
    #: chance an invoice references a purchase order (TpoDocRef 801) and delivery (52)
    uses_po: float = 0.0
    #: chance the invoice carries the delivery address (Transporte/DirDest)
    ships: float = 0.0
    #: chance a line description names the project ("Obra Los Aromos")
    names_project: float = 0.0
    lines: tuple[int, int] = (1, 3)
    #: overhead suppliers bill the head-office cost centre, not a project
    overhead: bool = False
    exento: bool = False  # issues facturas exentas (34)


@dataclass(frozen=True)
class ProjectSpec:
    code: str
    name: str
    address: str
    comuna: str
    client: str | None
    months: tuple[int, int]  # active from month a to month b of the period (0-based)
    budget: int
    #: how a supplier or the accountant writes it in a description
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class CompanyKindSpec:
    kind: str
    company_name: str
    accounts: tuple[tuple[str, str], ...]
    products: tuple[ProductSpec, ...]
    suppliers: tuple[SupplierSpec, ...]
    projects: tuple[ProjectSpec, ...]
    head_office: str  # Project.code of the overhead cost centre
    approval_threshold: int = 5_000_000
    #: wrong or alternative accounts an accountant sometimes uses: code -> alternatives
    confusions: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def product(self, key: str) -> ProductSpec:
        return next(p for p in self.products if p.key == key)
