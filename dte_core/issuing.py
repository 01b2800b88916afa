"""Issue documents: validate, allocate a folio, build, stamp (TED), sign, check against the XSD.

Validation happens before any folio is taken, so a rejected input never consumes one; a failure
after allocation voids the folio with its reason, so no gap is ever silent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from dte_core import totals, xsd
from dte_core.caf import Caf, SiiKeyring, select_caf
from dte_core.envelope import NSMAP, Caratula, build_envio, check_envio, serialize
from dte_core.errors import (
    CafError,
    CertificateError,
    DteError,
    FieldError,
    FoliosExhaustedError,
    InvalidDocumentError,
)
from dte_core.folios import Allocation, FolioRange, FolioStore
from dte_core.models import Documento, parse_documento, parse_envio_request
from dte_core.rut import Rut
from dte_core.signing import CompanyCertificate, sign_element
from dte_core.ted import build_ted
from dte_core.xmlbuild import documento_element
from dte_core.xmlsafe import SII_NS

SANTIAGO = ZoneInfo("America/Santiago")


def chile_now() -> datetime:
    """SII timestamps (TSTED, TmstFirma) are Chilean local time without an offset."""
    return datetime.now(SANTIAGO).replace(tzinfo=None, microsecond=0)


@dataclass(frozen=True)
class IssuerMaterial:
    """What a company needs to issue: its signing certificate and its CAFs."""

    certificate: CompanyCertificate
    cafs: Sequence[Caf]
    keyring: SiiKeyring


@dataclass(frozen=True)
class IssuedDocument:
    tipo_dte: int
    folio: int
    rut_emisor: str
    rut_receptor: str
    fecha_emision: date
    monto_total: int
    xml: bytes  # the signed <DTE>, ISO-8859-1
    documento: Documento = field(repr=False)
    folio_warning: str | None = None  # set when the CAF range is about to run out


@dataclass(frozen=True)
class IssuedEnvio:
    xml: bytes
    documents: list[IssuedDocument]


def caf_range(caf: Caf) -> FolioRange:
    return FolioRange(
        rut_emisor=caf.rut_emisor,
        tipo_dte=caf.tipo_dte,
        folio_desde=caf.folio_desde,
        folio_hasta=caf.folio_hasta,
        fecha_autorizacion=caf.fecha_autorizacion,
        expires_on=caf.expires_on,
        caf_xml=caf.raw,
        fingerprint=caf.fingerprint,
    )


class Issuer:
    """Issues signed DTEs for one company from its material and its folio store."""

    def __init__(
        self,
        material: IssuerMaterial,
        folios: FolioStore,
        company_id: str,
        *,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._material = material
        self._folios = folios
        self._company_id = company_id
        self._now = now or chile_now
        self._verified: dict[str, Caf] = {}
        for caf in material.cafs:
            caf.verify(material.keyring)
            self._verified[caf.fingerprint] = caf
            folios.register_range(company_id, caf_range(caf))

    def issue(
        self, data: Mapping[str, Any], *, document_ref: str | None = None, path: str = ""
    ) -> IssuedDocument:
        documento = totals.complete(parse_documento(data, path=path))
        return self.issue_documento(documento, document_ref=document_ref, path=path)

    def issue_documento(
        self, documento: Documento, *, document_ref: str | None = None, path: str = ""
    ) -> IssuedDocument:
        id_doc = documento.Encabezado.IdDoc
        tipo = int(id_doc.TipoDTE)
        rut_emisor = str(documento.Encabezado.Emisor.RUTEmisor)
        now = self._now()
        self._check_material(tipo, rut_emisor, now.date(), path)
        allocation = self._allocate(documento, tipo, rut_emisor, now.date(), document_ref)
        try:
            xml = self._build_signed(documento, allocation.folio, now)
        except Exception as exc:
            self._folios.mark_void(
                self._company_id,
                rut_emisor,
                tipo,
                allocation.folio,
                f"issuing failed after allocation: {exc}",
            )
            raise
        self._folios.mark_issued(
            self._company_id,
            rut_emisor,
            tipo,
            allocation.folio,
            document_ref or f"{rut_emisor}/{tipo}/{allocation.folio}",
        )
        warning = (
            f"only {allocation.remaining} folios of tipo {tipo} remain: request a new CAF"
            if allocation.low
            else None
        )
        final = with_folio(documento, allocation.folio)
        return IssuedDocument(
            tipo_dte=tipo,
            folio=allocation.folio,
            rut_emisor=rut_emisor,
            rut_receptor=str(final.Encabezado.Receptor.RUTRecep),
            fecha_emision=final.Encabezado.IdDoc.FchEmis,
            monto_total=int(getattr(final.Encabezado.Totales, "MntTotal", 0) or 0),
            xml=xml,
            documento=final,
            folio_warning=warning,
        )

    def issue_envio(self, request: Mapping[str, Any]) -> IssuedEnvio:
        """The CLI contract: check everything first, then issue every document and envelope them.

        Should anything fail once folios are taken, the documents already issued are voided:
        their XML never left this process, so their folios must be declared unused.
        """
        envio = parse_envio_request(request)
        documentos = _complete_all(envio.Documentos)
        car = envio.Caratula
        caratula = Caratula(
            rut_emisor=str(documentos[0].Encabezado.Emisor.RUTEmisor),
            rut_envia=str(car.RutEnvia),
            rut_receptor=str(car.RutReceptor),
            fch_resol=car.FchResol,
            nro_resol=int(car.NroResol),
        )
        tipos = [int(d.Encabezado.IdDoc.TipoDTE) for d in documentos]
        check_envio(
            tipos,
            [str(d.Encabezado.Emisor.RUTEmisor) for d in documentos],
            caratula,
            self._material.certificate,
        )
        today = self._now().date()
        for i, tipo in enumerate(tipos):
            self._check_material(tipo, caratula.rut_emisor, today, f"Documentos[{i}]")
        self._check_capacity(documentos, caratula.rut_emisor, today)
        issued: list[IssuedDocument] = []
        try:
            for i, doc in enumerate(documentos):
                issued.append(self.issue_documento(doc, path=f"Documentos[{i}]"))
            xml = build_envio(
                [d.xml for d in issued],
                caratula,
                self._material.certificate,
                timestamp=self._now(),
            )
        except Exception as exc:
            for done in issued:
                self._folios.mark_void(
                    self._company_id,
                    done.rut_emisor,
                    done.tipo_dte,
                    done.folio,
                    f"envelope not written: {exc}",
                )
            raise
        return IssuedEnvio(xml=xml, documents=issued)

    def _check_capacity(
        self, documentos: Sequence[Documento], rut_emisor: str, today: date
    ) -> None:
        needed = Counter(
            int(d.Encabezado.IdDoc.TipoDTE) for d in documentos if not d.Encabezado.IdDoc.Folio
        )
        for tipo, count in sorted(needed.items()):
            left = self._folios.remaining(self._company_id, rut_emisor, tipo, today=today)
            if left < count:
                raise FoliosExhaustedError(
                    f"{count} documents of tipo {tipo} need folios but only {left} remain: "
                    "load a new CAF from the SII",
                    fields=[
                        FieldError(
                            "Documentos",
                            "folios_exhausted",
                            f"tipo {tipo}: need {count}, {left} left",
                        )
                    ],
                )

    def _check_material(self, tipo: int, rut_emisor: str, today: date, path: str) -> None:
        cert = self._material.certificate
        if cert.not_after.date() < today:
            raise CertificateError(
                f"the signing certificate expired on {cert.not_after.date()}: load a current one"
            )
        usable = [
            c
            for c in self._verified.values()
            if c.tipo_dte == tipo
            and Rut.parse(c.rut_emisor) == Rut.parse(rut_emisor)
            and not c.is_expired(today)
            and c.private_key is not None
        ]
        if not usable:
            raise CafError(
                f"no usable CAF for emisor {rut_emisor} and tipo_dte {tipo}: load a current CAF "
                "from the SII for this document type",
                code="no_caf",
                fields=[
                    FieldError(
                        f"{path}.Encabezado.IdDoc.TipoDTE".lstrip("."),
                        "no_caf",
                        "no usable CAF for this type",
                    )
                ],
            )

    def _allocate(
        self,
        documento: Documento,
        tipo: int,
        rut_emisor: str,
        today: date,
        document_ref: str | None,
    ) -> Allocation:
        folio = documento.Encabezado.IdDoc.Folio
        if folio:
            return self._folios.allocate_specific(
                self._company_id,
                rut_emisor,
                tipo,
                int(folio),
                today=today,
                document_ref=document_ref,
            )
        return self._folios.allocate(
            self._company_id, rut_emisor, tipo, today=today, document_ref=document_ref
        )

    def _build_signed(self, documento: Documento, folio: int, now: datetime) -> bytes:
        tipo = int(documento.Encabezado.IdDoc.TipoDTE)
        caf = select_caf(list(self._verified.values()), tipo, folio)
        return build_signed_dte(
            with_folio(documento, folio), caf, self._material.certificate, timestamp=now
        )


def build_signed_dte(
    documento: Documento, caf: Caf, certificate: CompanyCertificate, *, timestamp: datetime
) -> bytes:
    """Build, stamp, sign and schema-check one completed document that already has its folio."""
    tipo = int(documento.Encabezado.IdDoc.TipoDTE)
    folio = int(documento.Encabezado.IdDoc.Folio or 0)
    dte = etree.Element(f"{{{SII_NS}}}DTE", nsmap=NSMAP)  # type: ignore[arg-type]
    dte.set("version", "1.0")
    doc_el = documento_element(documento, doc_id=f"F{folio}T{tipo}")
    dte.append(doc_el)
    doc_el.append(build_ted(doc_el, caf, timestamp=timestamp))
    tmst = etree.SubElement(doc_el, f"{{{SII_NS}}}TmstFirma")
    tmst.text = timestamp.strftime("%Y-%m-%dT%H:%M:%S")
    sign_element(doc_el, certificate)
    xsd.assert_valid(dte)
    return serialize(dte)


def with_folio(documento: Documento, folio: int) -> Documento:
    """A copy of the document carrying its folio."""
    enc = documento.Encabezado
    id_doc = enc.IdDoc.model_copy(update={"Folio": folio})
    return documento.model_copy(update={"Encabezado": enc.model_copy(update={"IdDoc": id_doc})})


def _complete_all(documentos: Sequence[Documento]) -> list[Documento]:
    """Complete every document, collecting the errors of all before giving up."""
    done: list[Documento] = []
    errors: list[FieldError] = []
    for i, doc in enumerate(documentos):
        try:
            done.append(totals.complete(doc))
        except DteError as exc:
            errors.extend(
                FieldError(f"Documentos[{i}].{f.field}", f.code, f.message) for f in exc.fields
            )
    if errors:
        raise InvalidDocumentError("the documents are invalid", fields=errors)
    return done
