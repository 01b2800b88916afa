"""XMLDSig: the measured oracles of shared/sii/README.md point 4, and our own round trips.

Signing and the verifier under test use xmlsec; signxml (pure Python on lxml + cryptography)
is the independent second opinion on both our output and the SII's samples.
"""

from __future__ import annotations

import base64
import copy
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from lxml import etree
from signxml import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConfiguration,
    SignatureMethod,
    XMLVerifier,
)
from signxml.exceptions import InvalidDigest, InvalidSignature

import dte_core
from dte_core.errors import CertificateError, SignatureError
from dte_core.signing import (
    CompanyCertificate,
    SignatureCheck,
    rut_from_certificate,
    sign_element,
    verify_signature,
)
from dte_core.testkit.pki import make_company_certificate, make_company_p12
from dte_core.xmlsafe import DSIG_NS, SII_NS, XSI_NS, parse_untrusted

DS_SIGNATURE = f"{{{DSIG_NS}}}Signature"
NSMAP = {None: SII_NS, "xsi": XSI_NS}
DTE_XSD = Path(dte_core.__file__).parent / "schemas" / "dte" / "DTE_v10.xsd"


def sii(tag: str) -> str:
    return f"{{{SII_NS}}}{tag}"


def sample(shared_sii: Path, name: str) -> etree._Element:
    folder = "official" if name.startswith("F60T33") else "sii-dte"
    return parse_untrusted((shared_sii / "samples" / folder / name).read_bytes())


def dte_signature(root: etree._Element) -> etree._Element:
    signature = root.find(f".//{sii('Documento')}/../{DS_SIGNATURE}")
    if signature is None:
        signature = root.find(DS_SIGNATURE)
    assert signature is not None
    return signature


def signxml_verify(root: etree._Element, cert: x509.Certificate, *, location: str = ".//") -> None:
    """Independent check: raises signxml's InvalidSignature (or a subclass) when it fails."""
    config = SignatureConfiguration(
        location=location,
        signature_methods=frozenset({SignatureMethod.RSA_SHA1}),
        digest_algorithms=frozenset({DigestAlgorithm.SHA1}),
        # no Transforms means C14N 1.0 in XMLDSig 1.0; signxml defaults to 1.1
        default_reference_c14n_method=CanonicalizationMethod.CANONICAL_XML_1_0,
        verification_time=cert.not_valid_before_utc + timedelta(hours=1),
    )
    verifier = XMLVerifier()
    # lxml's C14N of SignedInfo inside a re-parsed Signature emits a spurious xmlns="" on its
    # grandchildren (the pitfall in shared/sii/README.md); signxml's switch removes it.
    verifier.excise_empty_xmlns_declarations = True
    verifier.verify(root, x509_cert=cert, expect_config=config, id_attribute="ID")


def embedded_cert(signature: etree._Element) -> x509.Certificate:
    text = signature.findtext(f".//{{{DSIG_NS}}}X509Certificate") or ""
    return x509.load_der_x509_certificate(base64.b64decode("".join(text.split())))


@pytest.fixture(scope="module")
def company() -> CompanyCertificate:
    return CompanyCertificate.from_pkcs12(make_company_p12(password=b"demo"), b"demo")


# --- the SII's real documents ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "DTE--76354771-K--33--170--cleaned.xml",
        "DTE--76399752-9--33--25568--cleaned.xml",
        "DTE--60910000-1--33--2336600.xml",
        "DTE--96670340-7--61--110616.xml",
    ],
)
def test_real_dte_verifies_in_place(shared_sii: Path, name: str) -> None:
    root = sample(shared_sii, name)
    signature = dte_signature(root)
    check = verify_signature(signature, tolerant=False)
    assert check.valid, check.reason
    assert (check.context, check.key_source) == ("in_place", "x509")
    cert = embedded_cert(signature)
    assert check.signer_subject == cert.subject.rfc4514_string()
    assert check.signer_rut == rut_from_certificate(cert) is not None
    assert check.signer_not_after == cert.not_valid_after_utc  # long expired, still valid
    signxml_verify(root, cert)  # the other implementation agrees


@pytest.mark.parametrize(
    "name",
    ["DTE--76354771-K--33--170.xml", "DTE--76399752-9--33--25568.xml"],
)
def test_raw_download_signed_with_namespace_fails_even_tolerant(
    shared_sii: Path, name: str
) -> None:
    """Signed with xmlns on <DTE>, downloaded without it: no tolerated context restores it."""
    signature = dte_signature(sample(shared_sii, name))
    strict = verify_signature(signature, tolerant=False)
    tolerant = verify_signature(signature, tolerant=True)
    for check in (strict, tolerant):
        assert not check.valid
        assert check.reason is not None and "digest mismatch" in check.reason
    assert tolerant.context is None


@pytest.mark.parametrize(
    "name",
    ["DTE--60910000-1--33--2336600--cleaned.xml", "DTE--96670340-7--61--110616--cleaned.xml"],
)
def test_cleaned_copy_of_document_signed_without_namespace(shared_sii: Path, name: str) -> None:
    signature = dte_signature(sample(shared_sii, name))
    strict = verify_signature(signature, tolerant=False)
    assert not strict.valid
    assert strict.reason is not None and "digest mismatch" in strict.reason
    tolerant = verify_signature(signature, tolerant=True)
    assert tolerant.valid, tolerant.reason
    assert (tolerant.context, tolerant.key_source) == ("without_sii_namespace", "x509")


@pytest.mark.parametrize("tolerant", [False, True])
@pytest.mark.parametrize("mod", ["changed-monto", "empty-emails"])
def test_altered_content_fails_on_digest(shared_sii: Path, mod: str, tolerant: bool) -> None:
    root = sample(shared_sii, f"DTE--76354771-K--33--170--cleaned-mod-{mod}.xml")
    signature = dte_signature(root)
    check = verify_signature(signature, tolerant=tolerant)
    assert not check.valid
    assert check.reason is not None and "digest mismatch" in check.reason
    with pytest.raises(InvalidDigest):
        signxml_verify(root, embedded_cert(signature))


def test_replaced_signature_value_fails_on_signature(shared_sii: Path) -> None:
    root = sample(shared_sii, "DTE--76354771-K--33--170--cleaned-mod-replaced-cert.xml")
    signature = dte_signature(root)
    check = verify_signature(signature)
    assert not check.valid
    assert check.reason is not None
    assert "SignatureValue does not verify" in check.reason and "digest" not in check.reason
    with pytest.raises(InvalidSignature) as raised:
        signxml_verify(root, embedded_cert(signature))
    assert not isinstance(raised.value, InvalidDigest)


def test_removed_signature_leaves_nothing_to_verify(shared_sii: Path) -> None:
    root = sample(shared_sii, "DTE--76354771-K--33--170--cleaned-mod-removed-signature.xml")
    assert root.find(sii("Documento")) is not None
    assert root.find(f".//{DS_SIGNATURE}") is None


@pytest.mark.parametrize(
    ("mod", "words"),
    [("bad-cert-no-base64", "not valid base64"), ("bad-cert", "not a readable X.509")],
)
@pytest.mark.parametrize("tolerant", [False, True])
def test_malformed_certificate_is_invalid_not_an_exception(
    shared_sii: Path, mod: str, words: str, tolerant: bool
) -> None:
    # The RSAKeyValue of these files is intact and would verify: a broken certificate still
    # makes the signature unacceptable, it is not silently replaced by the KeyValue.
    signature = dte_signature(
        sample(shared_sii, f"DTE--76354771-K--33--170--cleaned-mod-{mod}.xml")
    )
    check = verify_signature(signature, tolerant=tolerant)
    assert not check.valid
    assert check.reason is not None and "X509Certificate" in check.reason and words in check.reason


def test_official_f60t33_example(shared_sii: Path) -> None:
    root = sample(shared_sii, "F60T33-ejemplo-oficial-SII.xml")
    dte_sig = dte_signature(root)
    assert not verify_signature(dte_sig, tolerant=False).valid
    inner = verify_signature(dte_sig, tolerant=True)
    assert inner.valid, inner.reason
    assert (inner.context, inner.key_source) == ("without_sii_namespace", "key_value")
    # the KeyValue is not the certificate's key: nobody is named as the signer
    assert inner.signer_subject is None and inner.signer_rut is None

    set_sig = root.find(DS_SIGNATURE)
    assert set_sig is not None
    envelope = verify_signature(set_sig, tolerant=False)
    assert envelope.valid, envelope.reason
    assert (envelope.context, envelope.key_source) == ("in_place", "key_value")
    # signxml agrees that the certificate does not sign it
    with pytest.raises(InvalidSignature):
        signxml_verify(root, embedded_cert(set_sig), location="./")


# --- our own signatures ----------------------------------------------------------------------


def envio_tree(documento_id: str = "F1T33") -> etree._Element:
    root = etree.Element(sii("EnvioDTE"), nsmap=NSMAP, version="1.0")
    root.set(f"{{{XSI_NS}}}schemaLocation", f"{SII_NS} EnvioDTE_v10.xsd")
    set_dte = etree.SubElement(root, sii("SetDTE"), ID="SetDoc")
    caratula = etree.SubElement(set_dte, sii("Caratula"), version="1.0")
    etree.SubElement(caratula, sii("RutEmisor")).text = "76086428-5"
    set_dte.append(dte_tree(documento_id, nsmap=None))
    return root


def dte_tree(documento_id: str, nsmap: dict[str | None, str] | None = NSMAP) -> etree._Element:
    dte = etree.Element(sii("DTE"), nsmap=nsmap, version="1.0")
    documento = etree.SubElement(dte, sii("Documento"), ID=documento_id)
    totales = etree.SubElement(documento, sii("Totales"))
    etree.SubElement(totales, sii("MntTotal")).text = "119000"
    etree.SubElement(documento, sii("NmbItem")).text = 'Cañería ½" — Ñandú'
    return dte


def test_round_trip_envio(company: CompanyCertificate) -> None:
    root = envio_tree()
    documento = root.find(f"{sii('SetDTE')}/{sii('DTE')}/{sii('Documento')}")
    assert documento is not None
    doc_sig = sign_element(documento, company)
    set_sig = sign_element(root[0], company)
    assert documento.getnext() is doc_sig and root[0].getnext() is set_sig

    data = etree.tostring(root, encoding="ISO-8859-1", xml_declaration=True)
    parsed = parse_untrusted(data)
    parsed_doc_sig = dte_signature(parsed)
    parsed_set_sig = parsed.find(DS_SIGNATURE)
    assert parsed_set_sig is not None
    for signature in (parsed_doc_sig, parsed_set_sig):
        check = verify_signature(signature, tolerant=False)
        assert check == SignatureCheck(
            valid=True,
            context="in_place",
            key_source="x509",
            reason=None,
            signer_subject=company.certificate.subject.rfc4514_string(),
            signer_rut="76086428-5",
            signer_not_after=company.not_after,
        )
    signxml_verify(parsed, company.certificate, location=f"./{sii('SetDTE')}/{sii('DTE')}/")
    signxml_verify(parsed, company.certificate, location="./")

    schema = etree.XMLSchema(etree.parse(str(DTE_XSD)))
    for signature in (parsed_doc_sig, parsed_set_sig):
        alone = etree.ElementTree(copy.deepcopy(signature))
        assert schema.validate(alone), schema.error_log
    reference = parsed_doc_sig.find(f".//{{{DSIG_NS}}}Reference")
    assert reference is not None and reference.find(f"{{{DSIG_NS}}}Transforms") is None

    tampered = parse_untrusted(data.replace(b">119000<", b">119001<", 1))
    for signature in (dte_signature(tampered), tampered.find(DS_SIGNATURE)):
        assert signature is not None
        check = verify_signature(signature, tolerant=False)
        assert not check.valid
        assert check.reason is not None and "digest mismatch" in check.reason
    with pytest.raises(InvalidDigest):
        signxml_verify(tampered, company.certificate, location="./")


def test_signed_standalone_dte_still_verifies_inside_envelope(company: CompanyCertificate) -> None:
    """How already-signed DTEs get enveloped: same two namespaces on <DTE> and on <EnvioDTE>."""
    dte = dte_tree("F7T33")
    sign_element(dte[0], company)
    dte_bytes = etree.tostring(dte, encoding="ISO-8859-1", xml_declaration=True)
    assert verify_signature(dte_signature(parse_untrusted(dte_bytes)), tolerant=False).valid

    root = envio_tree("F1T33")
    root[0].append(parse_untrusted(dte_bytes))
    moved = parse_untrusted(etree.tostring(root, encoding="ISO-8859-1"))
    signature = moved.find(f".//{sii('Documento')}[@ID='F7T33']/../{DS_SIGNATURE}")
    assert signature is not None
    check = verify_signature(signature, tolerant=False)
    assert check.valid, check.reason
    assert check.context == "in_place"
    signxml_verify(moved, company.certificate, location=f"./{sii('SetDTE')}/{sii('DTE')}[2]/")

    # the counter-proof: one more namespace in scope changes inclusive C14N, so in place fails
    other = etree.Element(sii("EnvioDTE"), nsmap={**NSMAP, "ext": "urn:example:ext"})
    other.append(parse_untrusted(dte_bytes))
    reparsed = parse_untrusted(etree.tostring(other))
    extra_ns = verify_signature(dte_signature(reparsed), tolerant=False)
    assert not extra_ns.valid
    assert extra_ns.reason is not None and "digest mismatch" in extra_ns.reason


def test_expired_certificate_signs_and_verifies(shared_sii: Path) -> None:
    crypto = shared_sii / "samples" / "sii-crypto"
    key = serialization.load_pem_private_key(
        (crypto / "TEST-DTE-13185095-K.pem").read_bytes(), None
    )
    cert = x509.load_der_x509_certificate((crypto / "TEST-DTE-13185095-K.der").read_bytes())
    assert isinstance(key, rsa.RSAPrivateKey)
    signer = CompanyCertificate(key, cert, rut_from_certificate(cert))
    assert signer.rut == "13185095-K"
    dte = dte_tree("F9T33")
    sign_element(dte[0], signer)
    check = verify_signature(dte_signature(parse_untrusted(etree.tostring(dte))), tolerant=False)
    assert check.valid, check.reason
    assert check.signer_rut == "13185095-K"
    assert check.signer_not_after is not None and check.signer_not_after.year == 2025


def test_key_value_fallback_and_wrong_keys(company: CompanyCertificate) -> None:
    stranger = make_company_certificate(rut="13185095-K", name="Otro")[1]
    stranger_b64 = embedded_cert_text(stranger)

    dte = dte_tree("F2T33")
    signature = sign_element(dte[0], company)
    cert_el = signature.find(f".//{{{DSIG_NS}}}X509Certificate")
    assert cert_el is not None
    cert_el.text = stranger_b64
    check = verify_signature(signature, tolerant=False)
    assert check.valid and check.key_source == "key_value"
    assert check.signer_subject is None and check.signer_rut is None

    key_value = signature.find(f".//{{{DSIG_NS}}}KeyValue")
    assert key_value is not None
    key_value.getparent().remove(key_value)  # type: ignore[union-attr]
    check = verify_signature(signature, tolerant=False)
    assert not check.valid
    assert check.reason is not None and "SignatureValue does not verify" in check.reason


def embedded_cert_text(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def test_reference_must_name_a_sibling(company: CompanyCertificate) -> None:
    """Signature wrapping: a valid signature moved away must not vouch for another element."""
    root = envio_tree()
    documento = root.find(f".//{sii('Documento')}")
    assert documento is not None
    signature = sign_element(documento, company)
    assert verify_signature(signature, tolerant=False).valid
    assert verify_signature(signature, tolerant=False).valid  # re-verifying is harmless
    root.append(signature)
    check = verify_signature(signature)
    assert not check.valid
    assert check.reason is not None and "sibling" in check.reason


def test_sign_element_refuses_unsignable_elements(company: CompanyCertificate) -> None:
    dte = dte_tree("F3T33")
    with pytest.raises(SignatureError, match="no ID attribute"):
        sign_element(dte, company)
    with pytest.raises(SignatureError, match="no parent"):
        sign_element(etree.Element(sii("Documento"), ID="F4T33"), company)
    sign_element(dte[0], company)
    with pytest.raises(SignatureError, match="already signed"):
        sign_element(dte[0], company)
    assert len(dte.findall(DS_SIGNATURE)) == 1


# --- PKCS#12 and RUT -------------------------------------------------------------------------


def test_pkcs12_opens_with_rut_and_expiry(company: CompanyCertificate) -> None:
    assert company.rut == "76086428-5"
    assert rut_from_certificate(company.certificate) == "76086428-5"
    assert timedelta(days=363) < company.not_after - company.certificate.not_valid_before_utc
    expired = CompanyCertificate.from_pkcs12(
        make_company_p12(rut="13185095-K", valid_days=-10, password=b"x"), b"x"
    )
    assert expired.rut == "13185095-K"
    assert expired.not_after < company.certificate.not_valid_before_utc


def test_pkcs12_wrong_password_and_garbage() -> None:
    p12 = make_company_p12(password=b"right")
    for data, password in ((p12, b"wrong"), (p12, None), (b"not a p12", b"right")):
        with pytest.raises(CertificateError) as raised:
            CompanyCertificate.from_pkcs12(data, password)
        assert raised.value.code == "invalid_certificate"
        assert "password" in raised.value.message


def test_pkcs12_without_password() -> None:
    p12 = make_company_p12(password=b"")
    for password in (None, b""):
        assert CompanyCertificate.from_pkcs12(p12, password).rut == "76086428-5"


def test_pkcs12_non_rsa_key_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "ec")])
    rsa_cert = make_company_certificate()[1]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(rsa_cert.not_valid_before_utc)
        .not_valid_after(rsa_cert.not_valid_after_utc)
        .sign(key, hashes.SHA256())
    )
    p12 = pkcs12.serialize_key_and_certificates(
        b"ec", key, cert, None, BestAvailableEncryption(b"p")
    )
    with pytest.raises(CertificateError, match="RSA"):
        CompanyCertificate.from_pkcs12(p12, b"p")


def test_rut_from_sii_shaped_certificates(shared_sii: Path) -> None:
    crypto = shared_sii / "samples" / "sii-crypto"

    def load(name: str) -> x509.Certificate:
        return x509.load_der_x509_certificate((crypto / name).read_bytes())

    # TEST-DTE-13185095-K.pem holds the private key; the certificate is the .der next to it
    assert rut_from_certificate(load("TEST-DTE-13185095-K.der")) == "13185095-K"
    assert rut_from_certificate(load("TEST-DTE-WITH-ID-BUT-NO-RUT.der")) is None  # "any-string"
    # real certificates encode it as IA5String
    assert rut_from_certificate(load("DTE--60910000-1--33--2336600-cert.der")) == "8480437-1"
