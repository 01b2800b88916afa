"""Judge an XML document from outside: schema, TED, CAF and signatures, following the SII's
tolerant rules for received documents (see ``../shared/sii/README.md``).

Input goes through the hardened parser; a hostile or unreadable file raises before anything else.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any

from lxml import etree

from dte_core import xsd
from dte_core.caf import Caf, SiiKeyring
from dte_core.errors import CafError
from dte_core.signing import SignatureCheck, verify_signature
from dte_core.ted import verify_ted
from dte_core.xmlsafe import DSIG_NS, SII_NS, local_name, parse_untrusted

_DS_SIGNATURE = f"{{{DSIG_NS}}}Signature"
# DTE_v10.xsd: a <DTE> holds one of these three
_DOCUMENT_TAGS = ("{*}Documento", "{*}Exportaciones", "{*}Liquidacion")


@dataclass
class Check:
    valid: bool
    errors: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class DocumentReport:
    id: str | None
    tipo_dte: int | None
    folio: int | None
    rut_emisor: str | None
    xsd: Check
    ted: Check
    caf: Check
    signature: Check
    fecha_emision: str | None = None  # FchEmis as written (AAAA-MM-DD)
    rut_receptor: str | None = None
    monto_total: int | None = None

    @property
    def authentic(self) -> bool:
        """Stamped by an SII-authorised CAF and signed: not forged, whatever the schema says."""
        return self.ted.valid and self.caf.valid and self.signature.valid

    @property
    def valid(self) -> bool:
        return self.authentic and self.xsd.valid

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["authentic"] = self.authentic
        out["valid"] = self.valid
        return out


@dataclass(frozen=True)
class EnvelopeInfo:
    """The Caratula of an EnvioDTE / EnvioBOLETA: what an acuse de recibo must quote back."""

    set_id: str | None  # SetDTE/@ID (RespuestaDTE EnvioDTEID)
    rut_emisor: str | None
    rut_envia: str | None
    rut_receptor: str | None
    digest: str | None  # the SetDTE signature's DigestValue (RespuestaDTE Digest)


@dataclass
class VerificationReport:
    root: str
    namespace_repaired: bool
    xsd: Check
    envelope_signatures: list[Check]
    documents: list[DocumentReport]
    envelope: EnvelopeInfo | None = None

    @property
    def valid(self) -> bool:
        return (
            bool(self.documents)
            and all(d.valid for d in self.documents)
            and all(s.valid for s in self.envelope_signatures)
            and self.xsd.valid
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "root": self.root,
            "namespace_repaired": self.namespace_repaired,
            "xsd": asdict(self.xsd),
            "envelope_signatures": [asdict(s) for s in self.envelope_signatures],
            "documents": [d.as_dict() for d in self.documents],
            "envelope": asdict(self.envelope) if self.envelope else None,
        }


def repair_namespace(root: etree._Element) -> tuple[etree._Element, bool]:
    """A copy with un-namespaced SII elements moved into the SiiDte namespace.

    The SII's own downloads omit ``xmlns`` on ``<DTE>``; the schema needs it. The copy declares
    SiiDte as the *default* namespace on the root, exactly as the issuer had it when signing:
    inclusive C14N writes the declaration into the signed bytes, so a prefixed copy (``ns0:``)
    would never verify. Elements already in a namespace (``ds:Signature``) are copied as they are.
    """
    if etree.QName(root).namespace is not None:
        return root, False
    nsmap: dict[str | None, str] = {p: uri for p, uri in root.nsmap.items() if p is not None}
    nsmap[None] = SII_NS
    # lxml-stubs omit the None (default) prefix from nsmap's type
    clone = etree.Element(f"{{{SII_NS}}}{root.tag}", _attributes(root), nsmap=nsmap)  # type: ignore[arg-type]
    clone.text = root.text
    _copy_into_sii(root, clone)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    # a fresh parse gives clean namespace nodes (no lxml artefacts under inclusive C14N)
    return etree.fromstring(etree.tostring(clone), parser), True


def _attributes(el: etree._Element) -> dict[str, str]:
    return {str(name): str(value) for name, value in el.attrib.items()}


def _copy_into_sii(source: etree._Element, target: etree._Element) -> None:
    for child in source:
        if not isinstance(child.tag, str) or etree.QName(child).namespace is not None:
            target.append(copy.deepcopy(child))  # comments, PIs, ds:Signature: unchanged
            continue
        moved = etree.SubElement(target, f"{{{SII_NS}}}{child.tag}", _attributes(child))
        moved.text, moved.tail = child.text, child.tail
        _copy_into_sii(child, moved)


def _signature_check(check: SignatureCheck) -> Check:
    return Check(
        valid=check.valid,
        errors=[check.reason] if check.reason and not check.valid else [],
        detail={
            "context": check.context,
            "key_source": check.key_source,
            "signer_subject": check.signer_subject,
            "signer_rut": check.signer_rut,
        },
    )


def _document_report(
    dte: etree._Element,
    keyring: SiiKeyring,
    restored_dte: etree._Element | None = None,
) -> DocumentReport:
    """TED, CAF and signature of one ``<DTE>``; the schema verdict is the caller's (the file's)."""
    documento = next((el for tag in _DOCUMENT_TAGS if (el := dte.find(tag)) is not None), None)
    enc = "{*}Encabezado/{*}IdDoc/"
    tipo = documento.findtext(enc + "{*}TipoDTE") if documento is not None else None
    folio = documento.findtext(enc + "{*}Folio") if documento is not None else None
    emisor = (
        documento.findtext("{*}Encabezado/{*}Emisor/{*}RUTEmisor")
        if documento is not None
        else None
    )
    receptor = (
        documento.findtext("{*}Encabezado/{*}Receptor/{*}RUTRecep")
        if documento is not None
        else None
    )
    fecha = documento.findtext(enc + "{*}FchEmis") if documento is not None else None
    total = (
        documento.findtext("{*}Encabezado/{*}Totales/{*}MntTotal")
        if documento is not None
        else None
    )

    ted_el = documento.find("{*}TED") if documento is not None else None
    if ted_el is None:
        ted_check = Check(False, ["the document has no TED (timbre electrónico)"])
        caf_check = Check(False, ["no CAF: the document has no TED"])
    else:
        result = verify_ted(ted_el, documento=documento, keyring=keyring)
        ted_check = Check(
            valid=result.frmt_valid and bool(result.matches_document is not False),
            errors=list(result.errors),
            detail={"frmt_valid": result.frmt_valid, "matches_document": result.matches_document},
        )
        caf_check = _caf_check(ted_el, keyring)

    signature = dte.find(_DS_SIGNATURE)
    if signature is None:
        sig_check = Check(False, ["the document is not signed (no ds:Signature in <DTE>)"])
    else:
        sig_check = _signature_check(verify_signature(signature, tolerant=True))
        restored_sig = restored_dte.find(_DS_SIGNATURE) if restored_dte is not None else None
        if not sig_check.valid and restored_sig is not None:
            # The SII's downloads drop xmlns from documents signed with it: try it restored.
            retry = verify_signature(restored_sig, tolerant=False)
            if retry.valid:
                sig_check = _signature_check(retry)
                sig_check.detail["context"] = "namespace_restored"
    return DocumentReport(
        id=documento.get("ID") if documento is not None else None,
        tipo_dte=_integer(tipo),
        folio=_integer(folio),
        rut_emisor=emisor.strip() if emisor else None,
        xsd=Check(valid=True),  # replaced by verify_received
        ted=ted_check,
        caf=caf_check,
        signature=sig_check,
        fecha_emision=fecha.strip() if fecha else None,
        rut_receptor=receptor.strip() if receptor else None,
        monto_total=_integer(total),
    )


def _integer(text: str | None) -> int | None:
    try:
        return int(text.strip()) if text else None
    except ValueError:
        return None


def _envelope_info(root: etree._Element) -> EnvelopeInfo | None:
    set_dte = root.find("{*}SetDTE")
    if set_dte is None:
        return None
    caratula = set_dte.find("{*}Caratula")

    def text(tag: str) -> str | None:
        value = caratula.findtext(f"{{*}}{tag}") if caratula is not None else None
        return value.strip() if value else None

    digest = root.findtext(
        f"{_DS_SIGNATURE}/{{{DSIG_NS}}}SignedInfo/{{{DSIG_NS}}}Reference/{{{DSIG_NS}}}DigestValue"
    )
    return EnvelopeInfo(
        set_id=set_dte.get("ID"),
        rut_emisor=text("RutEmisor"),
        rut_envia=text("RutEnvia"),
        rut_receptor=text("RutReceptor"),
        digest="".join(digest.split()) if digest else None,
    )


def _caf_check(ted: etree._Element, keyring: SiiKeyring) -> Check:
    caf_el = ted.find("{*}DD/{*}CAF")
    if caf_el is None:
        return Check(False, ["the TED carries no CAF"])
    try:
        caf = Caf.from_element(caf_el)
        key = caf.verify(keyring)
    except CafError as exc:
        return Check(False, [exc.message])
    return Check(
        True, detail={"key": key, "idk": caf.idk, "range": [caf.folio_desde, caf.folio_hasta]}
    )


def _dtes(root: etree._Element) -> list[etree._Element]:
    if local_name(root) == "DTE":
        return [root]
    return [el for el in root.iter("{*}DTE") if el.find("{*}Documento") is not None]


def verify_xml(data: bytes, *, keyring: SiiKeyring) -> VerificationReport:
    """Judge one file (a DTE, an EnvioDTE/EnvioBOLETA or an AEC)."""
    return verify_received(data, keyring=keyring)[0]


def verify_received(
    data: bytes, *, keyring: SiiKeyring
) -> tuple[VerificationReport, list[etree._Element]]:
    """:func:`verify_xml`, plus each ``<DTE>`` with its SII namespace repaired (in the order of
    ``report.documents``), for storing the documents that were judged."""
    root = parse_untrusted(data)
    repaired, was_repaired = repair_namespace(root)
    schema = xsd.schema_for(repaired)
    findings = xsd.validate(repaired) if schema is not None else []
    whole = Check(
        valid=not findings,
        errors=[str(f) for f in findings],
        detail={"schema": schema.value if schema else None},
    )
    standalone = local_name(root) == "DTE"
    originals = _dtes(root)
    repaired_dtes = _dtes(repaired)
    documents = []
    for i, dte in enumerate(originals):
        restored = repaired_dtes[i] if was_repaired else None
        doc = _document_report(dte, keyring, restored)
        # a standalone DTE is its own file's schema check; inside envelopes, the envelope's
        doc.xsd = (
            Check(valid=whole.valid, errors=list(whole.errors))
            if standalone
            else Check(valid=whole.valid, errors=[], detail={"checked_with": "envelope"})
        )
        documents.append(doc)
    envelope_sigs = [
        _signature_check(verify_signature(sig, tolerant=False))
        for sig in root.findall(_DS_SIGNATURE)
        if not standalone
    ]
    verdict = VerificationReport(
        root=local_name(root),
        namespace_repaired=was_repaired,
        xsd=whole,
        envelope_signatures=envelope_sigs,
        documents=documents,
        envelope=_envelope_info(root),
    )
    return verdict, repaired_dtes
