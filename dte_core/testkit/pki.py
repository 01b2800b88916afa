"""Generate company signing certificates shaped like the SII's (RUT in subjectAltName), as PKCS#12.

Self-signed and for tests, demos and simulators only: the SII accepts certificates issued by
its accredited authorities, never these.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    KeySerializationEncryption,
    NoEncryption,
    pkcs12,
)
from cryptography.x509.oid import NameOID

#: Where SII-accredited authorities put the holder's RUT: subjectAltName otherName.
SII_RUT_OID: Final = x509.ObjectIdentifier("1.3.6.1.4.1.8321.1")

# RSA key generation takes ~50-200 ms; a test session asks for the same few keys many times.
_KEYS: dict[tuple[str, int], rsa.RSAPrivateKey] = {}
_KEYS_LOCK = threading.Lock()


def _key_for(label: str, key_size: int) -> rsa.RSAPrivateKey:
    with _KEYS_LOCK:
        key = _KEYS.get((label, key_size))
        if key is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
            _KEYS[(label, key_size)] = key
        return key


def _der_utf8_string(text: str) -> bytes:
    """DER UTF8String, the encoding ``openssl req ... otherName:OID;UTF8:<rut>`` produces."""
    data = text.encode("utf-8")
    if len(data) >= 128:
        raise ValueError("a RUT is never that long")
    return bytes((0x0C, len(data))) + data


def make_company_certificate(
    *,
    rut: str = "76086428-5",
    name: str = "Empresa Demo SpA",
    key_size: int = 2048,
    valid_days: int = 365,
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A self-signed RSA certificate carrying ``rut`` like an SII-accredited one does.

    A negative ``valid_days`` gives a certificate that has already expired (``valid_days`` ago).
    """
    canonical = rut.strip().upper()  # as given: tests use RUTs with a wrong check digit too
    key = _key_for(canonical, key_size)
    now = datetime.now(UTC).replace(microsecond=0)
    not_after = now + timedelta(days=valid_days)
    not_before = min(now, not_after) - timedelta(days=1)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    san = x509.SubjectAlternativeName([x509.OtherName(SII_RUT_OID, _der_utf8_string(canonical))])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def make_company_p12(
    *,
    rut: str = "76086428-5",
    name: str = "Empresa Demo SpA",
    password: bytes = b"demo",
    key_size: int = 2048,
    valid_days: int = 365,
) -> bytes:
    """PKCS#12 bytes (key + self-signed certificate with ``rut``), protected by ``password``."""
    key, certificate = make_company_certificate(
        rut=rut, name=name, key_size=key_size, valid_days=valid_days
    )
    encryption: KeySerializationEncryption = (
        BestAvailableEncryption(password) if password else NoEncryption()
    )
    return pkcs12.serialize_key_and_certificates(
        name.encode("utf-8"), key, certificate, None, encryption
    )
