"""CAF (Código de Autorización de Folios): the SII's signed grant of a folio range.

A CAF carries the SII's signature (``FRMA``) over its ``DA`` block and the key pair the emisor
uses to stamp each document's TED. Verifying ``FRMA`` needs the SII's public key selected by
``DA/IDK``; :class:`SiiKeyring` holds those keys.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property, lru_cache
from importlib import resources
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import (
    RSAPrivateKey,
    RSAPublicKey,
    RSAPublicNumbers,
)
from lxml import etree

from dte_core.errors import CafError, InvalidRutError, XmlParseError, XmlSecurityError
from dte_core.rut import Rut
from dte_core.xmlsafe import local_name, parse_untrusted, sii_bytes

#: IDK of the SII key that signs certification CAFs (maullin) and production CAFs (palena).
IDK_CERTIFICACION: Final = 100
IDK_PRODUCCION: Final = 300

#: Folio grants for these types lapse six months after ``FA`` (SII rule since 2014).
EXPIRING_TIPOS: Final = frozenset({33, 34, 43, 46, 52, 56, 61, 110, 111, 112})
CAF_VALIDITY_MONTHS: Final = 6

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)


# --------------------------------------------------------------------------- SII public keys


def _der_element(data: bytes, pos: int) -> tuple[int, int, int]:
    """Return ``(tag, content_start, content_end)`` of the DER element at ``pos``."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length = data[pos], data[pos + 1]
    start = pos + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    if start + length > len(data):
        raise ValueError("truncated DER")
    return tag, start, start + length


def _spki_from_certificate(der: bytes) -> bytes:
    """The SubjectPublicKeyInfo bytes of an X.509 certificate, read by DER framing only.

    The SII's ``100.cer`` declares an X.509 version ``cryptography`` refuses, so its key is
    taken from the TBSCertificate fields directly: [0] version?, serial, signature algorithm,
    issuer, validity, subject, subjectPublicKeyInfo.
    """
    _, cert_start, _ = _der_element(der, 0)
    _, pos, tbs_end = _der_element(der, cert_start)
    fields = 6
    if der[pos] == 0xA0:  # explicit [0] version
        fields += 1
    for _ in range(fields - 1):
        _, _, pos = _der_element(der, pos)
        if pos >= tbs_end:
            raise ValueError("TBSCertificate too short")
    tag, _, end = _der_element(der, pos)
    if tag != 0x30:
        raise ValueError("SubjectPublicKeyInfo is not a SEQUENCE")
    return der[pos:end]


def _certificate_public_key(der: bytes) -> object:
    try:
        return x509.load_der_x509_certificate(der).public_key()
    except (ValueError, x509.InvalidVersion):
        return serialization.load_der_public_key(_spki_from_certificate(der))


def load_rsa_public_key(pem_or_der: bytes) -> RSAPublicKey:
    """Read an RSA public key from a PEM public key or a PEM/DER X.509 certificate."""
    key: object
    try:
        block = _PEM_BLOCK.search(pem_or_der)
        if block is None:
            try:
                key = serialization.load_der_public_key(pem_or_der)
            except ValueError:
                key = _certificate_public_key(pem_or_der)
        elif block.group(1) == b"CERTIFICATE":
            key = _certificate_public_key(base64.b64decode(block.group(2)))
        else:
            key = serialization.load_pem_public_key(block.group(0))
    except (ValueError, TypeError, IndexError, binascii.Error) as exc:
        raise CafError(
            "cannot read an RSA public key from the given bytes; pass a PEM public key or a "
            "PEM/DER certificate",
            code="sii_key_unreadable",
        ) from exc
    if not isinstance(key, RSAPublicKey):
        raise CafError("the SII key must be an RSA public key", code="sii_key_unreadable")
    return key


def _key_id(key: RSAPublicKey) -> str:
    spki = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()[:16]


@lru_cache(maxsize=1)
def _bundled_keys() -> Mapping[int, tuple[str, RSAPublicKey]]:
    folder = resources.files("dte_core").joinpath("sii_keys")
    keys: dict[int, tuple[str, RSAPublicKey]] = {}
    for idk in (IDK_CERTIFICACION, IDK_PRODUCCION):
        data = folder.joinpath(f"{idk}.cer").read_bytes()
        keys[idk] = (f"sii-idk-{idk}", load_rsa_public_key(data))
    return keys


class SiiKeyring:
    """Public keys that sign CAFs, by IDK (100 = certificación/maullin, 300 = producción/palena)."""

    def __init__(
        self,
        official: Mapping[int, tuple[str, RSAPublicKey]] | None = None,
        trusted: Iterable[tuple[str, RSAPublicKey]] = (),
    ) -> None:
        self._official = dict(official or {})
        self._trusted = tuple(trusted)

    @classmethod
    def default(cls) -> SiiKeyring:
        """The SII's own keys, shipped with the package (read once, on first use)."""
        return cls(_bundled_keys())

    def with_trusted_key(self, pem_or_der: bytes) -> SiiKeyring:
        """A new keyring that also accepts this key for any IDK (test CAFs, simulators)."""
        key = load_rsa_public_key(pem_or_der)
        return SiiKeyring(self._official, (*self._trusted, (f"trusted-{_key_id(key)}", key)))

    def restricted_to(self, *idks: int) -> SiiKeyring:
        """Only the official keys of these IDKs (and the trusted ones)."""
        official = {idk: entry for idk, entry in self._official.items() if idk in idks}
        return SiiKeyring(official, self._trusted)

    def keys_for(self, idk: int) -> list[tuple[str, RSAPublicKey]]:
        """``(label, key)`` pairs to try for a CAF with this IDK: official first, then trusted."""
        official = self._official.get(idk)
        return ([official] if official else []) + list(self._trusted)


# --------------------------------------------------------------------------- CAF


def _child(el: etree._Element, path: str) -> etree._Element:
    found = el.find("/".join(f"{{*}}{part}" for part in path.split("/")))
    if found is None:
        raise CafError(f"the CAF has no <{path}>; is it a complete SII CAF file?")
    return found


def _text(el: etree._Element, path: str) -> str:
    text = (_child(el, path).text or "").strip()
    if not text:
        raise CafError(f"the CAF has an empty <{path}>")
    return text


def _int(el: etree._Element, path: str) -> int:
    text = _text(el, path)
    if not (text.isascii() and text.isdigit()):
        raise CafError(f"<{path}> of the CAF is not a number: {text!r}")
    return int(text)


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except binascii.Error as exc:
        raise CafError(f"{what} of the CAF is not base64") from exc


def _compact(el: etree._Element) -> etree._Element:
    """A namespace-free copy without the indentation whitespace between tags."""
    parser = etree.XMLParser(encoding="ISO-8859-1", resolve_entities=False, no_network=True)
    return etree.fromstring(sii_bytes(el), parser)


def add_months(day: date, months: int) -> date:
    """``day`` plus calendar months, clamped to the end of a shorter month."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _private_key(text: str | None) -> RSAPrivateKey | None:
    if text is None or "-----BEGIN" not in text:
        return None  # redacted or absent: a verify-only CAF
    try:
        key = serialization.load_pem_private_key(text.strip().encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise CafError(
            "the CAF's <RSASK> private key is unreadable; download the CAF again from the SII",
            code="caf_private_key_unreadable",
        ) from exc
    if not isinstance(key, RSAPrivateKey):
        raise CafError("the CAF's <RSASK> is not an RSA key", code="caf_private_key_unreadable")
    return key


@dataclass(frozen=True, eq=False)
class Caf:
    rut_emisor: str
    razon_social: str
    tipo_dte: int
    folio_desde: int
    folio_hasta: int
    fecha_autorizacion: date
    idk: int
    public_key: RSAPublicKey
    private_key: RSAPrivateKey | None
    caf_element: etree._Element
    raw: bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> Caf:
        """Read a CAF file as downloaded from the SII (``<AUTORIZACION>``) or a bare ``<CAF>``."""
        try:
            root = parse_untrusted(data)
        except XmlSecurityError:
            raise
        except XmlParseError as exc:
            raise CafError(
                f"the CAF file is not readable XML ({exc.message}); download it again from the SII",
                code="caf_unreadable",
            ) from exc
        name = local_name(root)
        if name == "CAF":
            return cls._build(root, None, data)
        if name != "AUTORIZACION":
            raise CafError(
                f"expected an SII CAF file (<AUTORIZACION> or <CAF>), got <{name}>",
                code="caf_unreadable",
            )
        rsask = root.find("{*}RSASK")
        return cls._build(_child(root, "CAF"), rsask.text if rsask is not None else None, data)

    @classmethod
    def from_element(cls, caf_el: etree._Element) -> Caf:
        """The CAF embedded in a TED (any namespace); it never carries a private key."""
        return cls._build(caf_el, None, sii_bytes(caf_el))

    @classmethod
    def _build(cls, caf_el: etree._Element, rsask: str | None, raw: bytes) -> Caf:
        if local_name(caf_el) != "CAF":
            raise CafError(f"expected <CAF>, got <{local_name(caf_el)}>", code="caf_unreadable")
        compact = _compact(caf_el)
        da = _child(compact, "DA")
        if da.find("RSAPK") is None:
            raise CafError(
                "only RSA CAFs (<RSAPK>) are supported; this one carries a DSA key",
                code="caf_unsupported_key",
            )
        try:
            rut = str(Rut.parse(_text(da, "RE"), field="CAF.DA.RE"))
        except InvalidRutError as exc:
            raise CafError(f"the CAF's <RE> is not a valid RUT: {exc.message}") from exc
        try:
            fecha = date.fromisoformat(_text(da, "FA"))
        except ValueError as exc:
            raise CafError("the CAF's <FA> is not a date AAAA-MM-DD") from exc
        modulus = int.from_bytes(_b64(_text(da, "RSAPK/M"), "RSAPK/M"), "big")
        exponent = int.from_bytes(_b64(_text(da, "RSAPK/E"), "RSAPK/E"), "big")
        try:
            public_key = RSAPublicNumbers(exponent, modulus).public_key()
        except ValueError as exc:
            raise CafError("the CAF's <RSAPK> is not a usable RSA key") from exc
        desde, hasta = _int(da, "RNG/D"), _int(da, "RNG/H")
        if desde > hasta:
            raise CafError(f"the CAF's folio range {desde}-{hasta} is empty")
        _b64(_text(compact, "FRMA"), "FRMA")
        return cls(
            rut_emisor=rut,
            razon_social=_text(da, "RS"),
            tipo_dte=_int(da, "TD"),
            folio_desde=desde,
            folio_hasta=hasta,
            fecha_autorizacion=fecha,
            idk=_int(da, "IDK"),
            public_key=public_key,
            private_key=_private_key(rsask),
            caf_element=compact,
            raw=raw,
        )

    def verify(self, keyring: SiiKeyring) -> str:
        """Check the SII's ``FRMA`` over ``DA``; return the label of the key that verified it."""
        signed = sii_bytes(_child(self.caf_element, "DA"))
        signature = _b64(_text(self.caf_element, "FRMA"), "FRMA")
        candidates = keyring.keys_for(self.idk)
        for label, key in candidates:
            try:
                key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
            except InvalidSignature:
                continue
            return label
        tried = ", ".join(label for label, _ in candidates) or "none"
        raise CafError(
            f"the SII signature (FRMA) of the CAF for tipo {self.tipo_dte}, folios "
            f"{self.folio_desde}-{self.folio_hasta} does not verify with the key(s) for IDK "
            f"{self.idk} (tried: {tried}); the file was altered or not issued by the SII "
            "(for a test CAF, trust its key with --trust-sii-key)",
            code="caf_signature_invalid",
        )

    def covers(self, folio: int) -> bool:
        return self.folio_desde <= folio <= self.folio_hasta

    @property
    def expires_on(self) -> date | None:
        """Last day the folios may be used; ``None`` for types whose CAFs never lapse (boletas)."""
        if self.tipo_dte not in EXPIRING_TIPOS:
            return None
        return add_months(self.fecha_autorizacion, CAF_VALIDITY_MONTHS)

    def is_expired(self, today: date) -> bool:
        expires = self.expires_on
        return expires is not None and today > expires

    def check_usable(
        self, folio: int, *, today: date, keyring: SiiKeyring, rut_emisor: str | None = None
    ) -> None:
        """Raise :class:`CafError` unless this CAF may stamp ``folio`` today."""
        self.verify(keyring)
        if rut_emisor is not None and not same_rut(rut_emisor, self.rut_emisor):
            raise CafError(
                f"the CAF belongs to emisor {self.rut_emisor}, not {rut_emisor}; load the CAF "
                "downloaded for this company",
                code="caf_wrong_emisor",
            )
        if not self.covers(folio):
            raise CafError(
                f"folio {folio} is outside the CAF range {self.folio_desde}-{self.folio_hasta} "
                f"for tipo {self.tipo_dte}; request more folios from the SII",
                code="folio_out_of_range",
            )
        if self.is_expired(today):
            raise CafError(
                f"the CAF for tipo {self.tipo_dte}, folios {self.folio_desde}-{self.folio_hasta} "
                f"expired on {self.expires_on} (authorised {self.fecha_autorizacion}); annul the "
                "unused folios and request a new CAF",
                code="caf_expired",
            )
        if self.private_key is None:
            raise CafError(
                "the CAF has no private key (<RSASK> is missing or redacted) so it cannot stamp "
                "documents; use the original file downloaded from the SII",
                code="caf_no_private_key",
            )

    def matches_private_key(self) -> bool:
        if self.private_key is None:
            return False
        return self.private_key.public_key().public_numbers() == self.public_key.public_numbers()

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the SII serialisation of ``DA``: a stable id for this grant."""
        return hashlib.sha256(sii_bytes(_child(self.caf_element, "DA"))).hexdigest()


def same_rut(a: str, b: str) -> bool:
    """Whether two RUT texts name the same RUT (dots, case and missing hyphen ignored)."""
    try:
        return str(Rut.parse(a)) == str(Rut.parse(b))
    except InvalidRutError:
        return a.strip().upper() == b.strip().upper()


def select_caf(cafs: Sequence[Caf], tipo_dte: int, folio: int) -> Caf:
    """The CAF that grants ``folio`` of ``tipo_dte`` (several CAFs per type are normal)."""
    for caf in cafs:
        if caf.tipo_dte == tipo_dte and caf.covers(folio):
            return caf
    ranges = sorted(
        f"{caf.folio_desde}-{caf.folio_hasta}" for caf in cafs if caf.tipo_dte == tipo_dte
    )
    raise CafError(
        f"no CAF covers folio {folio} of tipo {tipo_dte} (loaded ranges: "
        f"{', '.join(ranges) or 'none'}); load the CAF that grants it",
        code="no_caf_for_folio",
    )
