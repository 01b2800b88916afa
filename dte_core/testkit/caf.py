"""Generate CAF files shaped exactly like the SII's, signed by a test "SII" key.

The SII's real CAF keys are RSA 512-bit with e = 3; ``cryptography`` refuses to generate keys
under 1024 bits, so generated CAF keys are RSA 1024-bit with e = 3 (verification and stamping
work the same; only ``RSAPK/M`` and ``FRMT`` are longer).
"""

from __future__ import annotations

import base64
from datetime import date
from typing import Final

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from lxml import etree

from dte_core.rut import Rut
from dte_core.xmlsafe import sii_bytes

SII_TEST_KEY_BITS: Final = 1024
CAF_KEY_BITS: Final = 1024
CAF_KEY_EXPONENT: Final = 3
_RS_LIMIT: Final = 40


def generate_sii_test_key() -> RSAPrivateKey:
    """A stand-in for the SII's CAF-signing key.

    The real IDK 100/300 keys are RSA 512; ``cryptography`` generates nothing under 1024.
    """
    return rsa.generate_private_key(public_exponent=65537, key_size=SII_TEST_KEY_BITS)


def generate_caf_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=CAF_KEY_EXPONENT, key_size=CAF_KEY_BITS)


def public_key_pem(key: RSAPrivateKey | RSAPublicKey) -> bytes:
    public = key.public_key() if isinstance(key, RSAPrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _b64_int(value: int) -> str:
    return base64.b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).decode("ascii")


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, tag)
    el.text = text
    return el


def make_caf_xml(
    *,
    sii_key: RSAPrivateKey,
    rut_emisor: str,
    razon_social: str,
    tipo_dte: int,
    folio_desde: int,
    folio_hasta: int,
    fecha_autorizacion: date,
    idk: int = 100,
    caf_key: RSAPrivateKey | None = None,
) -> bytes:
    """A complete ``<AUTORIZACION>`` file like the SII's: ISO-8859-1, no encoding declaration."""
    caf_key = caf_key or generate_caf_key()
    numbers = caf_key.public_key().public_numbers()
    caf = etree.Element("CAF", version="1.0")
    da = _sub(caf, "DA")
    _sub(da, "RE", str(Rut.parse(rut_emisor)))
    _sub(da, "RS", razon_social[:_RS_LIMIT])
    _sub(da, "TD", str(tipo_dte))
    rng = _sub(da, "RNG")
    _sub(rng, "D", str(folio_desde))
    _sub(rng, "H", str(folio_hasta))
    _sub(da, "FA", fecha_autorizacion.isoformat())
    rsapk = _sub(da, "RSAPK")
    _sub(rsapk, "M", _b64_int(numbers.n))
    _sub(rsapk, "E", _b64_int(numbers.e))
    _sub(da, "IDK", str(idk))
    signature = sii_key.sign(sii_bytes(da), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    frma = _sub(caf, "FRMA", base64.b64encode(signature).decode("ascii"))
    frma.set("algoritmo", "SHA1withRSA")

    private_pem = caf_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode("ascii")
    # Same layout as the SII's files: one DA field per line, the CAF then both PEM keys.
    body = sii_bytes(caf)
    for tag in (b"<DA>", b"<RE>", b"<RS>", b"<TD>", b"<RNG>", b"<FA>", b"<RSAPK>", b"<IDK>"):
        body = body.replace(tag, b"\n" + tag, 1)
    body = body.replace(b"</DA>", b"\n</DA>\n", 1).replace(b"</CAF>", b"\n</CAF>", 1)
    return (
        b'<?xml version="1.0"?>\n<AUTORIZACION>\n'
        + body
        + b"\n<RSASK>"
        + private_pem.encode("ascii")
        + b"</RSASK>\n\n<RSAPUBK>"
        + public_key_pem(caf_key)
        + b"</RSAPUBK>\n</AUTORIZACION>\n"
    )
