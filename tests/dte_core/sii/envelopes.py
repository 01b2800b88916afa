"""Build real, signed, stamped envelopes for the SII tests without the issuing pipeline.

Documents are written element by element in the schemas' order, stamped with a CAF signed by a
generated "SII" key (trusted by the simulator), signed with a generated company certificate
and enveloped by :func:`dte_core.envelope.build_envio`: every signature and stamp is real.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from lxml import etree

from dte_core.caf import Caf, SiiKeyring
from dte_core.envelope import NSMAP, Caratula, build_envio
from dte_core.signing import CompanyCertificate, sign_element
from dte_core.ted import build_ted
from dte_core.testkit.caf import generate_sii_test_key, make_caf_xml, public_key_pem
from dte_core.testkit.pki import make_company_p12
from dte_core.xmlsafe import SII_NS

EMISOR = "76086428-5"
RECEPTOR = "77777777-7"
FIRMANTE = "11111111-1"
PASSWORD = b"sim-demo"
FECHA = date(2026, 11, 30)
TS = datetime(2026, 11, 30, 10, 0, 0)


@lru_cache(maxsize=1)
def sii_key() -> RSAPrivateKey:
    return generate_sii_test_key()


@lru_cache(maxsize=1)
def certificate() -> CompanyCertificate:
    p12 = make_company_p12(rut=FIRMANTE, name="Firmante Simulador", password=PASSWORD)
    return CompanyCertificate.from_pkcs12(p12, PASSWORD)


def keyring() -> SiiKeyring:
    """What the simulator trusts: the SII's own keys plus the generated test key."""
    return SiiKeyring.default().with_trusted_key(public_key_pem(sii_key()))


@lru_cache(maxsize=16)
def caf(tipo: int, *, key: RSAPrivateKey | None = None) -> Caf:
    return Caf.from_bytes(
        make_caf_xml(
            sii_key=key or sii_key(),
            rut_emisor=EMISOR,
            razon_social="EMPRESA DEMO SPA",
            tipo_dte=tipo,
            folio_desde=1,
            folio_hasta=5000,
            fecha_autorizacion=FECHA,
        )
    )


def _sub(parent: etree._Element, tag: str, text: object | None = None) -> etree._Element:
    el = etree.SubElement(parent, f"{{{SII_NS}}}{tag}")
    if text is not None:
        el.text = str(text)
    return el


@dataclass(frozen=True)
class Ref:
    tipo: int
    folio: int
    codref: int


def dte(
    tipo: int, folio: int, *, neto: int = 10_000, ref: Ref | None = None, caf_: Caf | None = None
) -> etree._Element:
    """A signed ``<DTE>`` of a factura-like type (33, 56, 61) or a boleta (39)."""
    boleta = tipo == 39
    root = etree.Element(f"{{{SII_NS}}}DTE", nsmap=NSMAP, version="1.0")
    documento = _sub(root, "Documento")
    documento.set("ID", f"F{folio}T{tipo}")
    enc = _sub(documento, "Encabezado")
    iddoc = _sub(enc, "IdDoc")
    _sub(iddoc, "TipoDTE", tipo)
    _sub(iddoc, "Folio", folio)
    _sub(iddoc, "FchEmis", FECHA.isoformat())
    if boleta:
        _sub(iddoc, "IndServicio", 3)
    emisor = _sub(enc, "Emisor")
    _sub(emisor, "RUTEmisor", EMISOR)
    if boleta:
        _sub(emisor, "RznSocEmisor", "Empresa Demo SpA")
        _sub(emisor, "GiroEmisor", "Servicios informaticos")
    else:
        _sub(emisor, "RznSoc", "Empresa Demo SpA")
        _sub(emisor, "GiroEmis", "Servicios informaticos")
        _sub(emisor, "Acteco", 620200)
    _sub(emisor, "DirOrigen", "Av. Apoquindo 4501")
    _sub(emisor, "CmnaOrigen", "Las Condes")
    receptor = _sub(enc, "Receptor")
    _sub(receptor, "RUTRecep", "66666666-6" if boleta else RECEPTOR)
    if not boleta:
        _sub(receptor, "RznSocRecep", "Cliente Ñandú Ltda")
        _sub(receptor, "GiroRecep", "Comercio")
        _sub(receptor, "DirRecep", "San Diego 2222")
        _sub(receptor, "CmnaRecep", "Santiago")
    iva = round(neto * 0.19)
    totales = _sub(enc, "Totales")
    _sub(totales, "MntNeto", neto)
    if not boleta:
        _sub(totales, "TasaIVA", 19)
    _sub(totales, "IVA", iva)
    _sub(totales, "MntTotal", neto + iva)
    det = _sub(documento, "Detalle")
    _sub(det, "NroLinDet", 1)
    _sub(det, "NmbItem", "Servicio de desarrollo")
    _sub(det, "QtyItem", 1)
    _sub(det, "PrcItem", neto)
    _sub(det, "MontoItem", neto)
    if ref is not None:
        referencia = _sub(documento, "Referencia")
        _sub(referencia, "NroLinRef", 1)
        _sub(referencia, "TpoDocRef", ref.tipo)
        _sub(referencia, "FolioRef", ref.folio)
        _sub(referencia, "FchRef", FECHA.isoformat())
        _sub(referencia, "CodRef", ref.codref)
        _sub(referencia, "RazonRef", "Referencia de prueba")
    documento.append(build_ted(documento, caf_ or caf(tipo), timestamp=TS))
    _sub(documento, "TmstFirma", TS.isoformat())
    sign_element(documento, certificate())
    return root


def envio(*dtes: etree._Element) -> bytes:
    caratula = Caratula(
        rut_emisor=EMISOR,
        rut_envia=FIRMANTE,
        rut_receptor="60803000-K",
        fch_resol=date(2014, 8, 22),
        nro_resol=0,
    )
    return build_envio(list(dtes), caratula, certificate(), timestamp=TS)


def facturas(first: int, count: int) -> bytes:
    return envio(*(dte(33, folio) for folio in range(first, first + count)))
