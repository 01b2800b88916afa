"""The signed seed of the SII's authentication: ``<getToken><item><Semilla>`` (AUT chapter 8).

Unlike DTEs (``Reference URI="#ID"``, :mod:`dte_core.signing`), the seed is signed *enveloped*:
``Reference URI=""`` with the enveloped-signature transform, ``KeyInfo`` with the RSA key value
and the X.509 certificate (AUT figuras 1.4 and 1.11). xmlsec (libxmlsec1) does the XMLDSig.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from lxml import etree

from dte_core.errors import XmlParseError
from dte_core.signing import CompanyCertificate, rut_from_certificate
from dte_core.sii.codes import EstadoToken
from dte_core.xmlsafe import DSIG_NS, parse_untrusted

_DS: Final = f"{{{DSIG_NS}}}"


def _xmlsec() -> Any:
    import xmlsec  # a dte_core dependency (see dte_core.signing); imported where used

    return xmlsec


def _signing_key(cert: CompanyCertificate) -> Any:
    xmlsec = _xmlsec()
    pem = cert.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key = xmlsec.Key.from_memory(pem, xmlsec.KeyFormat.PEM)
    key.load_cert_from_memory(
        cert.certificate.public_bytes(serialization.Encoding.PEM), xmlsec.KeyFormat.CERT_PEM
    )
    return key


def signed_seed(seed: str, cert: CompanyCertificate) -> bytes:
    """The ``pszXml`` of GetTokenFromSeed: the seed signed with the company certificate."""
    xmlsec = _xmlsec()
    root = etree.Element("getToken")
    etree.SubElement(etree.SubElement(root, "item"), "Semilla").text = seed
    signature = xmlsec.template.create(root, xmlsec.Transform.C14N, xmlsec.Transform.RSA_SHA1)
    root.append(signature)
    ref = xmlsec.template.add_reference(signature, xmlsec.Transform.SHA1, uri="")
    xmlsec.template.add_transform(ref, xmlsec.Transform.ENVELOPED)
    key_info = xmlsec.template.ensure_key_info(signature)
    xmlsec.template.add_key_value(key_info)
    xmlsec.template.add_x509_data(key_info)
    ctx = xmlsec.SignatureContext()
    ctx.key = _signing_key(cert)
    ctx.sign(signature)
    # KeyInfo is outside SignedInfo: the RSAKeyValue (AUT figura 1.3 "Módulo", "Exponente")
    # is filled in after signing, as libxmlsec leaves <KeyValue/> empty for this key type.
    numbers = cert.private_key.public_key().public_numbers()
    key_value = key_info.find(f"{_DS}KeyValue")
    rsa_value = etree.SubElement(key_value, f"{_DS}RSAKeyValue")
    etree.SubElement(rsa_value, f"{_DS}Modulus").text = _b64_int(numbers.n)
    etree.SubElement(rsa_value, f"{_DS}Exponent").text = _b64_int(numbers.e)
    return b'<?xml version="1.0"?>\n' + etree.tostring(root, encoding="UTF-8")


def _b64_int(value: int) -> str:
    return base64.b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).decode("ascii")


@dataclass(frozen=True)
class SeedCheck:
    """The simulator's verdict on a signed seed: ``estado`` is GetTokenFromSeed's ESTADO."""

    estado: EstadoToken
    seed: str | None = None
    rut: str | None = None  # the signer's RUT (certificate subjectAltName)
    detail: str = ""


def verify_signed_seed(data: bytes) -> SeedCheck:
    """Server side of GetTokenFromSeed: parse, find the seed, check the enveloped signature."""
    xmlsec = _xmlsec()
    try:
        root = parse_untrusted(data)
    except XmlParseError as exc:
        return SeedCheck(EstadoToken.XML_SAX, detail=exc.message)
    seed = (root.findtext("item/Semilla") or root.findtext(".//Semilla") or "").strip()
    if not seed:
        return SeedCheck(EstadoToken.SIN_SEMILLA)
    signature = root.find(f"{_DS}Signature")
    if signature is None:
        return SeedCheck(EstadoToken.SIN_SIGNATURE, seed)
    cert_text = signature.findtext(f"{_DS}KeyInfo/{_DS}X509Data/{_DS}X509Certificate")
    if not cert_text or not cert_text.strip():
        return SeedCheck(EstadoToken.SIN_CERTIFICADO, seed)
    try:
        der = base64.b64decode("".join(cert_text.split()), validate=True)
        certificate = x509.load_der_x509_certificate(der)
    except (ValueError, binascii.Error) as exc:
        return SeedCheck(EstadoToken.SIN_CERTIFICADO, seed, detail=str(exc))
    public = certificate.public_key()
    if not isinstance(public, RSAPublicKey):
        return SeedCheck(EstadoToken.FIRMA_INVALIDA, seed, detail="not an RSA certificate")
    modulus = signature.findtext(f"{_DS}KeyInfo/{_DS}KeyValue/{_DS}RSAKeyValue/{_DS}Modulus")
    if modulus is not None:
        try:
            value = int.from_bytes(base64.b64decode("".join(modulus.split())), "big")
        except (ValueError, binascii.Error):
            value = -1
        if value != public.public_numbers().n:
            return SeedCheck(EstadoToken.LLAVE_NO_COINCIDE, seed)
    references = signature.findall(f"{_DS}SignedInfo/{_DS}Reference")
    if len(references) != 1 or references[0].get("URI") != "":
        return SeedCheck(EstadoToken.FIRMA_INVALIDA, seed, detail='needs one Reference URI=""')
    ctx = xmlsec.SignatureContext()
    for name in ("ENVELOPED", "C14N", "SHA1", "RSA_SHA1"):
        ctx.enable_reference_transform(getattr(xmlsec.Transform, name))
        ctx.enable_signature_transform(getattr(xmlsec.Transform, name))
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    ctx.key = xmlsec.Key.from_memory(pem, xmlsec.KeyFormat.PEM)
    try:
        ctx.verify(signature)
    except xmlsec.Error as exc:
        return SeedCheck(EstadoToken.FIRMA_INVALIDA, seed, detail=str(exc))
    return SeedCheck(EstadoToken.OK, seed, rut_from_certificate(certificate))
