"""Validation against the official SII schemas, vendored byte-identical in ``dte_core/schemas``."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any

from lxml import etree

from dte_core.errors import SchemaError
from dte_core.xmlsafe import local_name


class Schema(Enum):
    """The official schemas, by the root element they validate (SII file names)."""

    DTE = "dte/DTE_v10.xsd"
    ENVIO_DTE = "dte/EnvioDTE_v10.xsd"
    ENVIO_BOLETA = "boleta/EnvioBOLETA_v11.xsd"
    # The boleta schema only declares BOLETADefType inside EnvioBOLETA; a standalone boleta <DTE> is
    # checked by a wrapper that includes the official file unchanged and declares DTE globally.
    BOLETA_DTE = "boleta/EnvioBOLETA_v11.xsd#DTE"
    RESPUESTA_DTE = "respuesta-envio/RespuestaEnvioDTE_v10.xsd"
    ENVIO_RECIBOS = "recibos/EnvioRecibos_v10.xsd"
    AEC = "aec/AEC_v10.xsd"
    CONSUMO_FOLIOS = "consumo-folios/ConsumoFolio_v10.xsd"
    LIBRO_CV = "libro-cv/LibroCV_v10.xsd"


_BOLETA_WRAPPER = b"""<xs:schema targetNamespace="http://www.sii.cl/SiiDte"
 xmlns:SiiDte="http://www.sii.cl/SiiDte" xmlns:xs="http://www.w3.org/2001/XMLSchema"
 elementFormDefault="qualified" attributeFormDefault="unqualified">
 <xs:include schemaLocation="EnvioBOLETA_v11.xsd"/>
 <xs:element name="DTE" type="SiiDte:BOLETADefType"/>
</xs:schema>"""

_ROOTS = {
    "DTE": Schema.DTE,
    "EnvioDTE": Schema.ENVIO_DTE,
    "EnvioBOLETA": Schema.ENVIO_BOLETA,
    "RespuestaDTE": Schema.RESPUESTA_DTE,
    "EnvioRecibos": Schema.ENVIO_RECIBOS,
    "AEC": Schema.AEC,
    "ConsumoFolios": Schema.CONSUMO_FOLIOS,
    "LibroCompraVenta": Schema.LIBRO_CV,
    # a lone ds:Signature is a global element of DTE_v10.xsd (it imports xmldsignature)
    "Signature": Schema.DTE,
}


@dataclass(frozen=True)
class SchemaFinding:
    line: int
    path: str | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def schemas_dir() -> Path:
    return Path(str(resources.files("dte_core") / "schemas"))


# lxml validators keep per-run error state, so each thread gets its own compiled schemas.
_local = threading.local()


def load(schema: Schema) -> etree.XMLSchema:
    cache: dict[Schema, etree.XMLSchema] = _local.__dict__.setdefault("schemas", {})
    compiled = cache.get(schema)
    if compiled is None:
        file_part, _, wrapper = schema.value.partition("#")
        path = schemas_dir() / file_part
        parser = etree.XMLParser(no_network=True, resolve_entities=False)
        if wrapper:
            # a virtual sibling: with the included file's own URL libxml2 sees a self-include
            base = str(path.with_name("boleta-dte-wrapper.xsd"))
            doc = etree.fromstring(_BOLETA_WRAPPER, parser, base_url=base).getroottree()
        else:
            doc = etree.parse(str(path), parser)
        compiled = etree.XMLSchema(doc)
        cache[schema] = compiled
    return compiled


def schema_for(root: etree._Element) -> Schema | None:
    """The schema a root element is checked against; boleta DTEs (39/41) use the boleta schema."""
    name = local_name(root)
    if name == "DTE":
        tipo = root.findtext("{*}Documento/{*}Encabezado/{*}IdDoc/{*}TipoDTE")
        if tipo and tipo.strip() in ("39", "41"):
            return Schema.BOLETA_DTE
    return _ROOTS.get(name)


def validate(root: etree._Element, schema: Schema | None = None) -> list[SchemaFinding]:
    """Every schema finding for ``root`` (empty when valid)."""
    chosen = schema or schema_for(root)
    if chosen is None:
        return [SchemaFinding(0, None, f"no SII schema for root element <{local_name(root)}>")]
    validator = load(chosen)
    if validator.validate(root):
        return []
    errors: Iterable[Any] = validator.error_log  # type: ignore[assignment]
    return [SchemaFinding(e.line, e.path, e.message) for e in errors]


def assert_valid(root: etree._Element, schema: Schema | None = None) -> None:
    findings = validate(root, schema)
    if findings:
        raise SchemaError(
            "the XML does not validate against the official SII schema: "
            + "; ".join(str(f) for f in findings[:5])
        )
