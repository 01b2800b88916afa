"""XMLDSig the SII way: sign a ``Documento`` / ``SetDTE`` where it stands, verify what we receive.

The SII profile (``xmldsignature_v10.xsd`` restricts the structure): a ``ds:Signature`` sibling
right after the signed element, C14N 1.0 inclusive, rsa-sha1, one ``Reference URI="#ID"``
with sha1 and no transforms, ``KeyInfo`` = ``KeyValue/RSAKeyValue`` then
``X509Data/X509Certificate``.

Inclusive C14N carries every namespace in scope (``xmlns`` of the SII, ``xmlns:xsi`` of the root),
so the digest depends on where the element stands: sign it in the context it will finally have.
Canonicalisation and RSA are done by xmlsec (libxmlsec1), in the document, without copies.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import (
    RSAPrivateKey,
    RSAPublicKey,
    RSAPublicNumbers,
)
from cryptography.hazmat.primitives.serialization import pkcs12
from lxml import etree

from dte_core.errors import CertificateError, SignatureError
from dte_core.xmlsafe import DSIG_NS, SII_NS, local_name

#: subjectAltName otherName where SII-accredited authorities put the holder's RUT.
SII_RUT_OID: Final = x509.ObjectIdentifier("1.3.6.1.4.1.8321.1")
_RUT_TEXT: Final = re.compile(r"^(\d{1,9})-?([\dkK])$")
C14N: Final = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_COMMENTS: Final = C14N + "#WithComments"
EXC_C14N: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
RSA_SHA1: Final = DSIG_NS + "rsa-sha1"
SHA1: Final = DSIG_NS + "sha1"
_TRANSFORMS: Final = (C14N, C14N_COMMENTS, EXC_C14N, DSIG_NS + "enveloped-signature")
_DIGESTS: Final = {
    SHA1: "sha1",
    "http://www.w3.org/2001/04/xmlenc#sha256": "sha256",
    "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
}
# Everything else (XSLT, XPath, XPointer, base64…) is refused: a received signature gets no
# say in what code runs over the document.
_REFERENCE_TRANSFORMS: Final = (
    "C14N", "C14N_COMMENTS", "EXCL_C14N", "EXCL_C14N_COMMENTS", "ENVELOPED",
    "SHA1", "SHA256", "SHA512",
)  # fmt: skip
_SIGNATURE_TRANSFORMS: Final = (
    "C14N", "C14N_COMMENTS", "EXCL_C14N", "EXCL_C14N_COMMENTS", "RSA_SHA1", "RSA_SHA256",
    "RSA_SHA512",
)  # fmt: skip


def _ds(tag: str) -> str:
    return f"{{{DSIG_NS}}}{tag}"


def _load_xmlsec() -> ModuleType:
    try:
        import xmlsec
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise SignatureError(
            "XML signatures need the 'xmlsec' package built against lxml's libxml2: "
            "pip install xmlsec (and the libxmlsec1 system library)",
            code="xmlsec_missing",
        ) from exc
    return xmlsec


def _b64(data: bytes) -> str:
    return "\n" + base64.encodebytes(data).decode("ascii")  # 76-column lines, like the SII's


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def _public_pem(key: RSAPublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def rut_from_certificate(certificate: x509.Certificate) -> str | None:
    """The holder's RUT from subjectAltName otherName 1.3.6.1.4.1.8321.1, or None.

    Normalised (``07880442-4`` -> ``7880442-4``, upper K) but not checked: the check digit is
    the authority's business, and test certificates carry RUTs like ``13185095-K``.
    """
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (x509.ExtensionNotFound, ValueError):
        return None
    for other in san.value.get_values_for_type(x509.OtherName):
        text = _der_string(other.value) if other.type_id == SII_RUT_OID else None
        match = _RUT_TEXT.match(text.strip().replace(".", "")) if text else None
        if match:
            return f"{int(match.group(1))}-{match.group(2).upper()}"
    return None


def _der_string(der: bytes) -> str | None:
    """One short DER string: UTF8String, PrintableString or IA5String (authorities differ)."""
    if len(der) < 2 or der[0] not in (0x0C, 0x13, 0x16) or der[1] != len(der) - 2:
        return None
    try:
        return der[2:].decode("utf-8" if der[0] == 0x0C else "ascii")
    except UnicodeDecodeError:
        return None


@dataclass(frozen=True)
class CompanyCertificate:
    """The company's signing material: an RSA key and its X.509 certificate."""

    private_key: RSAPrivateKey
    certificate: x509.Certificate
    rut: str | None
    _xmlsec_key: Any = field(default=None, init=False, repr=False, compare=False)
    _key_info: tuple[str, str, str] = field(
        default=("", "", ""), init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        public = self.certificate.public_key()
        if not isinstance(self.private_key, RSAPrivateKey) or not isinstance(public, RSAPublicKey):
            raise CertificateError("the SII only accepts RSA signing keys: use an RSA certificate")
        numbers = public.public_numbers()
        if self.private_key.public_key().public_numbers() != numbers:
            raise CertificateError(
                "the private key does not belong to the certificate: export both from the "
                "same PKCS#12 file"
            )
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        info = (_b64(_int_bytes(numbers.n)), _b64(_int_bytes(numbers.e)), _b64(der))
        object.__setattr__(self, "_key_info", info)

    @property
    def not_after(self) -> datetime:
        return self.certificate.not_valid_after_utc

    @classmethod
    def from_pkcs12(cls, data: bytes, password: bytes | None) -> CompanyCertificate:
        """Open a PKCS#12 (.p12/.pfx) file as issued by an SII-accredited authority."""
        try:
            key, cert, extra = _load_pkcs12(data, password)
        except ValueError as exc:
            raise CertificateError(
                "cannot open the PKCS#12 file: the password is wrong or the file is not a "
                "PKCS#12 (.p12/.pfx) certificate; check both and upload it again"
            ) from exc
        if key is None:
            raise CertificateError(
                "the PKCS#12 file holds no private key: export the certificate together with "
                "its private key"
            )
        if not isinstance(key, RSAPrivateKey):
            raise CertificateError(
                f"the PKCS#12 key is {type(key).__name__.lstrip('_')}, but the SII only accepts "
                "RSA: use an RSA certificate"
            )
        numbers = key.public_key().public_numbers()
        candidates = ([cert] if cert is not None else []) + extra
        matching = [c for c in candidates if _public_numbers(c) == numbers]
        if not matching:
            raise CertificateError(
                "the PKCS#12 file holds no certificate for its private key: export the "
                "certificate together with its private key"
            )
        return cls(key, matching[0], rut_from_certificate(matching[0]))

    def _signing_key(self) -> Any:
        # Parsing the key into xmlsec costs as much as a signature: once per certificate.
        if self._xmlsec_key is None:
            xmlsec = _load_xmlsec()
            pem = self.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            object.__setattr__(
                self, "_xmlsec_key", xmlsec.Key.from_memory(pem, xmlsec.KeyFormat.PEM)
            )
        return self._xmlsec_key


def _public_numbers(certificate: x509.Certificate) -> RSAPublicNumbers | None:
    key = certificate.public_key()
    return key.public_numbers() if isinstance(key, RSAPublicKey) else None


def _load_pkcs12(
    data: bytes, password: bytes | None
) -> tuple[Any, x509.Certificate | None, list[x509.Certificate]]:
    # Files "without password" are encrypted with either no password or the empty one.
    attempts = [password] + ([b"" if password is None else None] if not password else [])
    last: ValueError | None = None
    for attempt in attempts:
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, attempt)
            return key, cert, list(extra)
        except ValueError as exc:
            last = exc
    assert last is not None
    raise last


def sign_element(element: etree._Element, cert: CompanyCertificate) -> etree._Element:
    """Sign ``element`` (must carry an ID attribute) where it stands; insert the ds:Signature
    right after it in its parent; return the Signature element."""
    ref_id = element.get("ID")
    if not ref_id:
        raise SignatureError(
            f"<{local_name(element)}> has no ID attribute: the signature references it by ID"
        )
    if element.getparent() is None:
        raise SignatureError(
            f"<{local_name(element)}> has no parent: the SII puts the signature next to the "
            "signed element, so build the <DTE>/<EnvioDTE> around it first"
        )
    following = element.getnext()
    if following is not None and following.tag == _ds("Signature"):
        raise SignatureError(f"<{local_name(element)} ID={ref_id!r}> is already signed")
    xmlsec = _load_xmlsec()
    signature = _template(ref_id)
    element.addnext(signature)
    try:
        ctx = xmlsec.SignatureContext()
        ctx.register_id(element, "ID")
        ctx.key = cert._signing_key()
        ctx.sign(signature)
    except xmlsec.Error as exc:
        element.getparent().remove(signature)  # type: ignore[union-attr]
        raise SignatureError(
            f"could not sign <{local_name(element)} ID={ref_id!r}>: {exc}"
        ) from exc
    modulus, exponent, der = cert._key_info
    key_info = etree.SubElement(signature, _ds("KeyInfo"))
    rsa_value = etree.SubElement(etree.SubElement(key_info, _ds("KeyValue")), _ds("RSAKeyValue"))
    etree.SubElement(rsa_value, _ds("Modulus")).text = modulus
    etree.SubElement(rsa_value, _ds("Exponent")).text = exponent
    x509_data = etree.SubElement(key_info, _ds("X509Data"))
    etree.SubElement(x509_data, _ds("X509Certificate")).text = der
    return signature


def _template(ref_id: str) -> etree._Element:
    # default namespace, like the SII's own signatures (lxml-stubs omit the None prefix)
    signature = etree.Element(_ds("Signature"), nsmap={None: DSIG_NS})  # type: ignore[dict-item]
    signed_info = etree.SubElement(signature, _ds("SignedInfo"))
    etree.SubElement(signed_info, _ds("CanonicalizationMethod"), Algorithm=C14N)
    etree.SubElement(signed_info, _ds("SignatureMethod"), Algorithm=RSA_SHA1)
    reference = etree.SubElement(signed_info, _ds("Reference"), URI=f"#{ref_id}")
    etree.SubElement(reference, _ds("DigestMethod"), Algorithm=SHA1)
    etree.SubElement(reference, _ds("DigestValue"))
    etree.SubElement(signature, _ds("SignatureValue"))
    return signature


@dataclass(frozen=True)
class SignatureCheck:
    """The verdict on one ds:Signature, and how it was reached."""

    valid: bool
    context: str | None  # "in_place" | "dte_alone" | "without_sii_namespace"
    key_source: str | None  # "x509" | "key_value"
    reason: str | None
    signer_subject: str | None
    signer_rut: str | None
    #: Reported, never enforced: the SII's own samples were signed with long-expired certificates.
    signer_not_after: datetime | None = None


class _Invalid(Exception):
    """A signature that cannot even be tried: the message is the SignatureCheck reason."""


@dataclass(frozen=True)
class _Parsed:
    ref_id: str
    digest_method: str
    digest_value: bytes
    transforms: tuple[str, ...]
    certificate: x509.Certificate
    cert_key: RSAPublicKey
    key_value: RSAPublicKey | None


def verify_signature(signature: etree._Element, *, tolerant: bool = True) -> SignatureCheck:
    """Verify a ds:Signature found in a document against the element its Reference URI names.

    ``tolerant`` (for received documents) also tries the signed element inside its parent
    copied out alone, then re-rooted without the SII namespace, because issuers sign in all
    these contexts; ``tolerant=False`` checks only where it stands (our own output, SetDTE).
    """
    try:
        parsed = _parse(signature)
        _target(signature, parsed.ref_id)
    except _Invalid as exc:
        return SignatureCheck(False, None, None, str(exc), None, None)
    xmlsec = _load_xmlsec()
    keys = [("x509", parsed.cert_key)]
    if parsed.key_value is not None and parsed.key_value.public_numbers() != (
        parsed.cert_key.public_numbers()
    ):
        keys.append(("key_value", parsed.key_value))
    xmlsec_keys = [
        (source, xmlsec.Key.from_memory(_public_pem(key), xmlsec.KeyFormat.PEM))
        for source, key in keys
    ]
    refusals: list[str] = []
    for context, make in _contexts(signature, tolerant):
        candidate = make()
        for source, key in xmlsec_keys:
            refusal = _try(xmlsec, candidate, parsed.ref_id, key)
            if refusal is None:
                signer = source == "x509" or len(keys) == 1
                cert = parsed.certificate
                return SignatureCheck(
                    valid=True,
                    context=context,
                    key_source=source,
                    reason=None,
                    signer_subject=cert.subject.rfc4514_string() if signer else None,
                    signer_rut=rut_from_certificate(cert) if signer else None,
                    signer_not_after=cert.not_valid_after_utc if signer else None,
                )
            if refusal:
                refusals.append(refusal)
    reason = refusals[0] if refusals else _diagnose(signature, parsed, len(keys) > 1)
    if tolerant:
        reason += " (tried in place, in its parent alone and without the SII namespace)"
    return SignatureCheck(False, None, None, reason, None, None)


def _try(xmlsec: ModuleType, signature: etree._Element, ref_id: str, key: Any) -> str | None:
    """None if it verifies, "" if it does not, or why the signature could not be processed."""
    ctx = xmlsec.SignatureContext()
    for name in _REFERENCE_TRANSFORMS:
        ctx.enable_reference_transform(getattr(xmlsec.Transform, name))
    for name in _SIGNATURE_TRANSFORMS:
        ctx.enable_signature_transform(getattr(xmlsec.Transform, name))
    ctx.key = key
    try:
        ctx.register_id(_target(signature, ref_id), "ID")
        ctx.verify(signature)
    except xmlsec.VerificationError:
        return ""
    except (xmlsec.Error, _Invalid) as exc:
        return f"the signature cannot be processed ({exc}): check its algorithms"
    return None


def _contexts(
    signature: etree._Element, tolerant: bool
) -> Iterator[tuple[str, Callable[[], etree._Element]]]:
    yield "in_place", lambda: signature
    if tolerant:
        yield "dte_alone", lambda: _standalone(signature, strip_sii=False)
        yield "without_sii_namespace", lambda: _standalone(signature, strip_sii=True)


def _standalone(signature: etree._Element, *, strip_sii: bool) -> etree._Element:
    """The signature's parent (the ``<DTE>``) copied out as a document of its own.

    ``deepcopy`` keeps only the namespaces the subtree uses (unlike the document, where every
    declaration in scope counts for inclusive C14N); the re-parse gives clean namespace nodes.
    """
    parent = signature.getparent()
    assert parent is not None  # _target checked it
    index = parent.index(signature)
    clone = copy.deepcopy(parent)
    if strip_sii:
        for node in clone.iter():
            if isinstance(node.tag, str) and etree.QName(node).namespace == SII_NS:
                node.tag = etree.QName(node).localname
        etree.cleanup_namespaces(clone)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(etree.tostring(clone, with_tail=False), parser)
    return root[index]


def _target(signature: etree._Element, ref_id: str) -> etree._Element:
    parent = signature.getparent()
    if parent is None:
        raise _Invalid("the signature stands alone: the signed element must be its sibling")
    # Only a sibling counts: readers take the data next to the signature, so a reference to an
    # element elsewhere (signature wrapping) must not make it look signed.
    found = [el for el in parent if isinstance(el.tag, str) and el.get("ID") == ref_id]
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        raise _Invalid(
            f"the Reference names #{ref_id}, but {what} sibling of the signature carries that ID"
        )
    return found[0]


def _parse(signature: etree._Element) -> _Parsed:
    if signature.tag != _ds("Signature"):
        raise _Invalid(f"<{local_name(signature)}> is not a ds:Signature")
    references = signature.findall(f"{_ds('SignedInfo')}/{_ds('Reference')}")
    if len(references) != 1:
        raise _Invalid(f"the signature has {len(references)} References; the SII uses exactly one")
    reference = references[0]
    uri = reference.get("URI") or ""
    if not uri.startswith("#") or len(uri) < 2:
        raise _Invalid(f"Reference URI {uri!r} does not name an element by ID (#ID)")
    digest_method = reference.find(_ds("DigestMethod"))
    try:
        digest_value = base64.b64decode(
            "".join((reference.findtext(_ds("DigestValue")) or "").split()), validate=True
        )
    except binascii.Error as exc:
        raise _Invalid("the DigestValue is not base64") from exc
    transforms = tuple(
        t.get("Algorithm") or ""
        for t in reference.iterfind(f"{_ds('Transforms')}/{_ds('Transform')}")
    )
    refused = [t for t in transforms if t not in _TRANSFORMS]
    if refused:
        raise _Invalid(f"the Reference uses transform {refused[0]!r}: only C14N is accepted")
    certificate = _certificate(signature)
    cert_key = certificate.public_key()
    if not isinstance(cert_key, RSAPublicKey):
        raise _Invalid("the X509Certificate does not hold an RSA key; the SII uses RSA only")
    return _Parsed(
        ref_id=uri[1:],
        digest_method=digest_method.get("Algorithm") or "" if digest_method is not None else "",
        digest_value=digest_value,
        transforms=transforms,
        certificate=certificate,
        cert_key=cert_key,
        key_value=_key_value(signature),
    )


def _certificate(signature: etree._Element) -> x509.Certificate:
    text = signature.findtext(f"{_ds('KeyInfo')}/{_ds('X509Data')}/{_ds('X509Certificate')}")
    if not text or not text.strip():
        raise _Invalid("the signature carries no X509Certificate (KeyInfo/X509Data)")
    try:
        der = base64.b64decode("".join(text.split()), validate=True)
    except binascii.Error as exc:
        raise _Invalid(f"the X509Certificate is not valid base64: {exc}") from exc
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise _Invalid(f"the X509Certificate is not a readable X.509 certificate: {exc}") from exc


def _key_value(signature: etree._Element) -> RSAPublicKey | None:
    rsa_value = signature.find(f"{_ds('KeyInfo')}/{_ds('KeyValue')}/{_ds('RSAKeyValue')}")
    if rsa_value is None:
        return None
    try:
        modulus, exponent = (
            int.from_bytes(
                base64.b64decode(
                    "".join((rsa_value.findtext(_ds(tag)) or "").split()), validate=True
                ),
                "big",
            )
            for tag in ("Modulus", "Exponent")
        )
        return RSAPublicNumbers(exponent, modulus).public_key()
    except (binascii.Error, ValueError):
        return None  # a broken KeyValue is simply not a candidate key


def _diagnose(signature: etree._Element, parsed: _Parsed, two_keys: bool) -> str:
    """Tell a changed document (digest) from a wrong key or forged value (SignatureValue)."""
    target = _target(signature, parsed.ref_id)
    name = f"<{local_name(target)} ID={parsed.ref_id!r}>"
    digest = _reference_digest(target, parsed)
    if digest is None:
        return f"{name}: the signature does not verify"
    if digest != parsed.digest_value:
        return (
            f"digest mismatch: {name} is not what was signed (altered after signing, or "
            "signed in another namespace context)"
        )
    keys = "the X509Certificate's key" + (" nor with the RSAKeyValue" if two_keys else "")
    return f"the SignatureValue does not verify with {keys}: wrong key or forged signature"


def _reference_digest(target: etree._Element, parsed: _Parsed) -> bytes | None:
    algorithm = _DIGESTS.get(parsed.digest_method)
    if algorithm is None or parsed.transforms not in ((), (C14N,), (C14N_COMMENTS,), (EXC_C14N,)):
        return None
    # a same-document reference (#ID) drops comments whatever the transform says
    # tostring() of a subelement declares every namespace in scope; canonicalising the re-parsed
    # copy avoids lxml's spurious xmlns="" on descendants of an in-document subtree.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    alone = etree.fromstring(etree.tostring(target, with_tail=False), parser)
    c14n = etree.tostring(
        alone, method="c14n", exclusive=parsed.transforms == (EXC_C14N,), with_comments=False
    )
    return hashlib.new(algorithm, c14n).digest()
