"""Pydantic models of the LLM answers of the prompts whose use case has no LLM path wired yet
(anomalies, PO reconciliation, extraction); they mirror ``prompts/<task>/schema.json``.
Classification and project matching use ``ai_service.usecases.llm_assist``'s models, chat and
validation their use case's. The model's JSON schema is part of the prompt fingerprint, so a use
case wiring its LLM path should validate answers with these very classes: a different class is a
different fingerprint, i.e. a prompt that needs a new evaluation."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PoLineMatch(_Out):
    nro_lin_det: int = Field(ge=1)
    po_line_id: str | None
    quantity_ok: bool
    price_ok: bool


class PoDiscrepancy(_Out):
    kind: Literal["extra_line", "missing_line", "price", "quantity", "supplier", "other"]
    nro_lin_det: int | None = None
    explanation: str


class PoReconciliationOutput(_Out):
    purchase_order_id: str | None
    line_matches: list[PoLineMatch]
    discrepancies: list[PoDiscrepancy]
    confidence: float = Field(ge=0, le=1)


AnomalyCode = Literal[
    "duplicate",
    "amount_outlier",
    "new_emisor",
    "totals_mismatch",
    "date_inconsistency",
    "supplier_data_changed",
    "other",
]


class AnomalyItem(_Out):
    code: AnomalyCode
    severity: Literal["low", "medium", "high"]
    explanation: str
    fields: list[str]


class AnomaliesOutput(_Out):
    anomalies: list[AnomalyItem]
    dismissed_signals: list[str] = Field(default_factory=list)


class ExtractionLine(_Out):
    nombre: str
    cantidad: float | None
    precio_unitario: float | None
    monto: int | None


class ExtractionOutput(_Out):
    tipo_dte: Literal[33, 34, 39, 41, 46, 52, 56, 61] | None
    folio: int | None = Field(ge=1)
    fecha_emision: str | None
    rut_emisor: str | None = Field(pattern=r"^[0-9]{1,8}-[0-9Kk]$")
    razon_social_emisor: str | None = None
    rut_receptor: str | None = Field(default=None, pattern=r"^[0-9]{1,8}-[0-9Kk]$")
    monto_neto: int | None = None
    monto_exento: int | None = None
    iva: int | None = None
    monto_total: int | None
    lines: list[ExtractionLine]
    confidence: float = Field(ge=0, le=1)
