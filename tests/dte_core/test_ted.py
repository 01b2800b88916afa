from __future__ import annotations

import base64
import copy
import datetime as dt
from functools import lru_cache
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from dte_core.caf import Caf, SiiKeyring
from dte_core.errors import CafError, InvalidDocumentError
from dte_core.ted import build_ted, pdf417_payload, verify_ted
from dte_core.testkit.caf import generate_sii_test_key, make_caf_xml, public_key_pem
from dte_core.xmlsafe import SII_NS, local_name, parse_untrusted, sii_bytes

REAL_DTES = [
    "DTE--60910000-1--33--2336600.xml",
    "DTE--60910000-1--33--2336600--cleaned.xml",
    "DTE--76354771-K--33--170.xml",
    "DTE--76354771-K--33--170--cleaned.xml",
    "DTE--76399752-9--33--25568.xml",
    "DTE--76399752-9--33--25568--cleaned.xml",
    "DTE--96670340-7--61--110616.xml",
    "DTE--96670340-7--61--110616--cleaned.xml",
]
# Tampering outside DD (signature, certificate, e-mails) leaves the stamp intact.
TAMPERED_OUTSIDE_DD = [
    "DTE--76354771-K--33--170--cleaned-mod-bad-cert.xml",
    "DTE--76354771-K--33--170--cleaned-mod-bad-cert-no-base64.xml",
    "DTE--76354771-K--33--170--cleaned-mod-empty-emails.xml",
    "DTE--76354771-K--33--170--cleaned-mod-removed-signature.xml",
    "DTE--76354771-K--33--170--cleaned-mod-replaced-cert.xml",
]
AECS = [
    "AEC--76354771-K--33--170--SEQ-2.xml",
    "AEC--76399752-9--33--25568--SEQ-1.xml",
    "AEC--76354771-K--33--170--SEQ-2-canonicalized-c14n.xml",
    "AEC--76354771-K--33--170--SEQ-2-canonicalized-c14n-signed_xml.xml",
]
EMISOR, RECEPTOR = "76086428-5", "77777777-7"
STAMPED_AT = dt.datetime(2025, 5, 2, 9, 30, 5)


@lru_cache(maxsize=1)
def sii_key() -> rsa.RSAPrivateKey:
    return generate_sii_test_key()


@lru_cache(maxsize=8)
def make_caf(tipo: int = 33, desde: int = 1, hasta: int = 50) -> Caf:
    return Caf.from_bytes(
        make_caf_xml(
            sii_key=sii_key(),
            rut_emisor=EMISOR,
            razon_social="EMPRESA DEMO SPA",
            tipo_dte=tipo,
            folio_desde=desde,
            folio_hasta=hasta,
            fecha_autorizacion=dt.date(2025, 4, 11),
        )
    )


@pytest.fixture(scope="module")
def keyring() -> SiiKeyring:
    return SiiKeyring.default()


@pytest.fixture(scope="module")
def trusting() -> SiiKeyring:
    return SiiKeyring.default().with_trusted_key(public_key_pem(sii_key()))


def documento(
    tipo: int = 33,
    folio: int = 7,
    *,
    rzn_soc_recep: str | None = "Cliente Ñandú y Compañía Limitada de Servicios",
    ns: str | None = SII_NS,
) -> etree._Element:
    """A small hand-built ``<Documento>``, laid out like the SII's (only what DD reads)."""

    def q(tag: str) -> str:
        return f"{{{ns}}}{tag}" if ns else tag

    def sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
        el = etree.SubElement(parent, q(tag))
        el.text = text
        return el

    doc = etree.Element(q("Documento"), nsmap={None: ns} if ns else None, ID=f"F{folio}T{tipo}")
    enc = sub(doc, "Encabezado")
    iddoc = sub(enc, "IdDoc")
    sub(iddoc, "TipoDTE", str(tipo))
    sub(iddoc, "Folio", str(folio))
    sub(iddoc, "FchEmis", "2025-05-02")
    emisor = sub(enc, "Emisor")
    sub(emisor, "RUTEmisor", EMISOR)
    sub(emisor, "RznSoc", "Empresa Demo SpA")
    receptor = sub(enc, "Receptor")
    sub(receptor, "RUTRecep", RECEPTOR)
    if rzn_soc_recep is not None:
        sub(receptor, "RznSocRecep", rzn_soc_recep)
    sub(sub(enc, "Totales"), "MntTotal", "119000")
    detalle = sub(doc, "Detalle")
    sub(detalle, "NroLinDet", "1")
    sub(detalle, "NmbItem", "Servicio de desarrollo de software a medida, mayo")
    detalle = sub(doc, "Detalle")
    sub(detalle, "NroLinDet", "2")
    sub(detalle, "NmbItem", "Second item")
    return doc


def stamped(doc: etree._Element, caf: Caf) -> etree._Element:
    """Append the TED and round-trip the bytes, as a receiver would see the document."""
    doc.append(build_ted(doc, caf, timestamp=STAMPED_AT))
    return parse_untrusted(etree.tostring(doc, encoding="ISO-8859-1"))


def _teds(path: Path) -> list[etree._Element]:
    teds = list(parse_untrusted(path.read_bytes()).iter("{*}TED"))
    assert teds, f"{path.name} holds no TED"
    return teds


# ----------------------------------------------------------------------------- real documents


@pytest.mark.parametrize("name", REAL_DTES + TAMPERED_OUTSIDE_DD)
def test_real_dte_stamp_verifies(shared_sii: Path, keyring: SiiKeyring, name: str) -> None:
    for ted in _teds(shared_sii / "samples/sii-dte" / name):
        check = verify_ted(ted, documento=ted.getparent(), keyring=keyring)
        assert check.valid, check.errors
        assert (check.frmt_valid, check.caf_valid, check.matches_document) == (True, True, True)
        assert check.caf_key == "sii-idk-300"
        assert check.errors == ()


@pytest.mark.parametrize("name", AECS)
def test_stamp_of_dte_inside_aec_verifies(shared_sii: Path, keyring: SiiKeyring, name: str) -> None:
    for ted in _teds(shared_sii / "samples/sii-rtc" / name):
        check = verify_ted(ted, documento=ted.getparent(), keyring=keyring)
        assert check.valid, check.errors
        assert check.caf_key == "sii-idk-300"


def test_official_example_stamp_verifies(shared_sii: Path, keyring: SiiKeyring) -> None:
    for ted in _teds(shared_sii / "samples/official/F60T33-ejemplo-oficial-SII.xml"):
        check = verify_ted(ted, documento=ted.getparent(), keyring=keyring)
        assert check.valid, check.errors
        assert check.caf_key == "sii-idk-100"


def test_changed_monto_breaks_frmt_not_the_document_match(
    shared_sii: Path, keyring: SiiKeyring
) -> None:
    # The tamperer rewrote MntTotal *and* DD/MNT consistently, so DD matches the document;
    # only the CAF-key signature over DD gives the forgery away.
    path = shared_sii / "samples/sii-dte/DTE--76354771-K--33--170--cleaned-mod-changed-monto.xml"
    (ted,) = _teds(path)
    check = verify_ted(ted, documento=ted.getparent(), keyring=keyring)
    assert not check.valid
    assert check.frmt_valid is False
    assert check.caf_valid is True and check.caf_key == "sii-idk-300"
    assert check.matches_document is True
    assert len(check.errors) == 1 and "FRMT" in check.errors[0]


def test_document_changed_after_stamping_is_a_mismatch(
    shared_sii: Path, keyring: SiiKeyring
) -> None:
    (ted,) = _teds(shared_sii / "samples/sii-dte/DTE--76354771-K--33--170--cleaned.xml")
    doc = ted.getparent()
    assert doc is not None
    doc.find("{*}Encabezado/{*}Totales/{*}MntTotal").text = "2996302"  # type: ignore[union-attr]
    doc.find("{*}Encabezado/{*}Receptor/{*}RUTRecep").text = "96.790.240-3"  # type: ignore[union-attr]
    check = verify_ted(ted, documento=doc, keyring=keyring)
    assert check.frmt_valid and check.caf_valid
    assert check.matches_document is False and not check.valid
    # RUTs compare as RUTs (dots ignored); amounts as numbers.
    assert check.errors == ("DD/MNT 2996301 != Totales/MntTotal 2996302",)


def test_stamp_alone_verifies_without_document(shared_sii: Path, keyring: SiiKeyring) -> None:
    (ted,) = _teds(shared_sii / "samples/sii-dte/DTE--96670340-7--61--110616.xml")
    check = verify_ted(ted, keyring=keyring)
    assert check.valid and check.matches_document is None


def test_pdf417_payload_is_the_compact_ted(shared_sii: Path) -> None:
    (raw_ted,) = _teds(shared_sii / "samples/sii-dte/DTE--60910000-1--33--2336600.xml")
    (clean_ted,) = _teds(shared_sii / "samples/sii-dte/DTE--60910000-1--33--2336600--cleaned.xml")
    payload = pdf417_payload(raw_ted)
    assert payload == pdf417_payload(clean_ted)
    assert payload.startswith(b'<TED version="1.0"><DD><RE>60910000-1</RE><TD>33</TD>')
    assert payload.endswith(b"</FRMT></TED>")
    assert b"xmlns" not in payload and b">\n" not in payload and b">\r" not in payload


# ----------------------------------------------------------------------------- our own stamps


def test_built_ted_shape() -> None:
    doc = documento()
    ted = build_ted(doc, make_caf(), timestamp=STAMPED_AT)
    assert ted.tag == f"{{{SII_NS}}}TED" and ted.get("version") == "1.0"
    assert all(etree.QName(el).namespace == SII_NS for el in ted.iter())
    assert [local_name(el) for el in ted] == ["DD", "FRMT"]
    dd = ted[0]
    assert [local_name(el) for el in dd] == [
        "RE", "TD", "F", "FE", "RR", "RSR", "MNT", "IT1", "CAF", "TSTED",
    ]  # fmt: skip
    values = {local_name(el): el.text for el in dd if local_name(el) != "CAF"}
    assert values == {
        "RE": EMISOR,
        "TD": "33",
        "F": "7",
        "FE": "2025-05-02",
        "RR": RECEPTOR,
        "RSR": "Cliente Ñandú y Compañía Limitada de Ser",
        "MNT": "119000",
        "IT1": "Servicio de desarrollo de software a med",
        "TSTED": "2025-05-02T09:30:05",
    }
    assert ted[1].get("algoritmo") == "SHA1withRSA"
    # The embedded CAF is the file's CAF, byte for byte in the SII serialisation.
    assert sii_bytes(dd.find(f"{{{SII_NS}}}CAF")) == sii_bytes(make_caf().caf_element)  # type: ignore[arg-type]
    assert len(base64.b64decode(ted[1].text or "")) == 128  # 1024-bit CAF key


def test_ted_appended_to_documento_takes_no_extra_namespace_declaration() -> None:
    doc = documento()
    doc.append(build_ted(doc, make_caf(), timestamp=STAMPED_AT))
    assert etree.tostring(doc).count(b"xmlns") == 1


def test_ted_for_a_documento_without_namespace() -> None:
    ted = build_ted(documento(ns=None), make_caf(), timestamp=STAMPED_AT)
    assert all(etree.QName(el).namespace is None for el in ted.iter())


def test_generated_round_trip_verifies(trusting: SiiKeyring) -> None:
    doc = stamped(documento(), make_caf())
    check = verify_ted(doc.find("{*}TED"), documento=doc, keyring=trusting)  # type: ignore[arg-type]
    assert check.valid, check.errors
    assert check.caf_key is not None and check.caf_key.startswith("trusted-")
    assert check.matches_document is True


def test_generated_stamp_fails_when_the_test_key_is_not_trusted(keyring: SiiKeyring) -> None:
    doc = stamped(documento(), make_caf())
    check = verify_ted(doc.find("{*}TED"), documento=doc, keyring=keyring)  # type: ignore[arg-type]
    assert check.frmt_valid and check.caf_valid is False and not check.valid
    assert check.caf_key is None
    assert any("FRMA" in e for e in check.errors)


@pytest.mark.parametrize(
    ("field", "value"),
    [("MNT", "119001"), ("RSR", "Otro cliente"), ("TSTED", "2025-05-02T09:30:06")],
)
def test_tampered_dd_is_invalid(trusting: SiiKeyring, field: str, value: str) -> None:
    doc = stamped(documento(), make_caf())
    ted = doc.find("{*}TED")
    assert ted is not None
    ted.find(f"{{*}}DD/{{*}}{field}").text = value  # type: ignore[union-attr]
    check = verify_ted(ted, keyring=trusting)
    assert not check.valid and check.frmt_valid is False and check.caf_valid


def test_stamp_resigned_outside_the_caf_range_is_invalid(trusting: SiiKeyring) -> None:
    caf = make_caf()
    doc = stamped(documento(), caf)
    ted = doc.find("{*}TED")
    assert ted is not None and caf.private_key is not None
    dd, frmt = ted[0], ted[1]
    dd.find("{*}F").text = "51"  # type: ignore[union-attr]
    doc.find("{*}Encabezado/{*}IdDoc/{*}Folio").text = "51"  # type: ignore[union-attr]
    signature = caf.private_key.sign(sii_bytes(dd), padding.PKCS1v15(), hashes.SHA1())
    frmt.text = base64.b64encode(signature).decode()
    check = verify_ted(ted, documento=doc, keyring=trusting)
    assert check.frmt_valid and check.caf_valid
    assert not check.valid and check.matches_document is False
    assert check.errors == ("DD/F 51 is outside the CAF range 1-50",)
    assert not verify_ted(ted, keyring=trusting).valid


def test_mismatched_document_is_reported(trusting: SiiKeyring) -> None:
    doc = stamped(documento(), make_caf())
    other = documento(folio=8)
    check = verify_ted(doc.find("{*}TED"), documento=other, keyring=trusting)  # type: ignore[arg-type]
    assert check.frmt_valid and not check.valid and check.matches_document is False
    assert check.errors == ("DD/F 7 != IdDoc/Folio 8",)


def test_boleta_without_receptor_name_gets_an_empty_rsr(trusting: SiiKeyring) -> None:
    doc = stamped(documento(39, 3, rzn_soc_recep=None), make_caf(39))
    ted = doc.find("{*}TED")
    assert ted is not None
    assert ted.find("{*}DD/{*}RSR").text is None  # type: ignore[union-attr]
    assert b"<RSR/>" in pdf417_payload(ted)
    assert verify_ted(ted, documento=doc, keyring=trusting).valid


def test_factura_without_receptor_name_is_refused() -> None:
    with pytest.raises(InvalidDocumentError) as err:
        build_ted(documento(rzn_soc_recep=None), make_caf(), timestamp=STAMPED_AT)
    assert [f.field for f in err.value.fields] == ["Encabezado.Receptor.RznSocRecep"]


def test_missing_fields_are_all_listed() -> None:
    doc = documento()
    for path in ("{*}Encabezado/{*}IdDoc/{*}FchEmis", "{*}Encabezado/{*}Totales/{*}MntTotal"):
        el = doc.find(path)
        assert el is not None
        el.getparent().remove(el)  # type: ignore[union-attr]
    with pytest.raises(InvalidDocumentError) as err:
        build_ted(doc, make_caf(), timestamp=STAMPED_AT)
    assert [f.field for f in err.value.fields] == [
        "Encabezado.IdDoc.FchEmis",
        "Encabezado.Totales.MntTotal",
    ]


@pytest.mark.parametrize(
    ("doc", "caf", "code"),
    [
        (lambda: documento(folio=51), lambda: make_caf(), "folio_out_of_range"),
        (lambda: documento(61, 1), lambda: make_caf(), "caf_wrong_tipo"),
        (
            lambda: documento(),
            lambda: Caf.from_element(make_caf().caf_element),
            "caf_no_private_key",
        ),
    ],
)
def test_build_ted_refuses_an_unusable_caf(doc, caf, code) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CafError) as err:
        build_ted(doc(), caf(), timestamp=STAMPED_AT)
    assert err.value.code == code


def test_build_ted_refuses_another_emisors_caf() -> None:
    doc = documento()
    doc.find("{*}Encabezado/{*}Emisor/{*}RUTEmisor").text = "76354771-K"  # type: ignore[union-attr]
    with pytest.raises(CafError) as err:
        build_ted(doc, make_caf(), timestamp=STAMPED_AT)
    assert err.value.code == "caf_wrong_emisor"


def test_embedded_caf_keeps_the_caf_identity(trusting: SiiKeyring) -> None:
    caf = make_caf()
    doc = stamped(documento(), caf)
    embedded = Caf.from_element(doc.find("{*}TED/{*}DD/{*}CAF"))  # type: ignore[arg-type]
    assert embedded.fingerprint == caf.fingerprint
    assert embedded.private_key is None
    assert embedded.verify(trusting) == caf.verify(trusting)


def test_stamp_survives_pretty_printing(trusting: SiiKeyring) -> None:
    doc = stamped(documento(), make_caf())
    pretty = copy.deepcopy(doc)
    etree.indent(pretty)
    reparsed = parse_untrusted(etree.tostring(pretty, encoding="ISO-8859-1"))
    check = verify_ted(reparsed.find("{*}TED"), documento=reparsed, keyring=trusting)  # type: ignore[arg-type]
    assert check.valid, check.errors


def test_malformed_ted_is_reported_not_raised(keyring: SiiKeyring) -> None:
    ted = etree.fromstring(f'<TED xmlns="{SII_NS}" version="1.0"><DD/></TED>'.encode())
    check = verify_ted(ted, keyring=keyring)
    assert not check.valid and check.errors
