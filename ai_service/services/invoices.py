"""Received invoices from what a caller sends: DTE XML (a ``<DTE>``, its ``<Documento>`` or an
EnvioDTE, through the hardened parser) or JSON (``{"invoices": [...]}``, ``{"invoice": {...}}``,
a list, or one invoice). The API and the CLI read them the same way."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from ai_service.api.errors import Unprocessable
from ai_service.context.models import ReceivedInvoice
from dte_core.models import field_errors

_HINT = 'send {"invoice": {...}} (or {"invoices": [...]}) as JSON, or the DTE as XML'


def parse_invoices(data: bytes, *, xml: bool | None = None) -> list[ReceivedInvoice]:
    """``xml`` None: decided by the first character. Raises ``DteError`` for bad XML and
    :class:`Unprocessable` (with every field) for bad JSON."""
    if xml if xml is not None else data.lstrip()[:1] == b"<":
        return ReceivedInvoice.all_from_xml(data)
    try:
        payload = json.loads(data or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Unprocessable(
            f"the body is neither DTE XML nor JSON: {exc}", code="invalid_json"
        ) from exc
    items = _items(payload)
    out = []
    for i, item in enumerate(items):
        try:
            out.append(ReceivedInvoice.model_validate(item))
        except ValidationError as exc:
            raise Unprocessable(
                "the invoice is invalid",
                code="invalid_invoice",
                fields=field_errors(exc, f"invoices[{i}]"),
            ) from exc
    return out


def _items(payload: Any) -> list[Any]:
    if isinstance(payload, list):
        items = payload
    elif isinstance(payload, dict) and "invoices" in payload:
        items = payload["invoices"]
    elif isinstance(payload, dict):
        items = [payload.get("invoice", payload)]
    else:
        items = []
    if not isinstance(items, list) or not items or any(i is None for i in items):
        raise Unprocessable(_HINT, code="invalid_input")
    return items
