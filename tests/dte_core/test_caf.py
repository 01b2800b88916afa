from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from dte_core.caf import Caf, SiiKeyring, load_rsa_public_key, select_caf
from dte_core.errors import CafError, XmlSecurityError
from dte_core.testkit.caf import generate_sii_test_key, make_caf_xml, public_key_pem
from dte_core.xmlsafe import local_name, parse_untrusted

CAF_FILES = {
    33: "CAF-cert-IDK100-FoliosSII7623529133120254111137-RSASK-REDACTED.xml",
    34: "CAF-cert-IDK100-FoliosSII7623529134120254111156-RSASK-REDACTED.xml",
    39: "CAF-cert-IDK100-FoliosSII7623529139120254111157-RSASK-REDACTED.xml",
    41: "CAF-cert-IDK100-FoliosSII7623529141120254111232-RSASK-REDACTED.xml",
    46: "CAF-cert-IDK100-FoliosSII7623529146120254111242-RSASK-REDACTED.xml",
    52: "CAF-cert-IDK100-FoliosSII7623529152120254111229-RSASK-REDACTED.xml",
    56: "CAF-cert-IDK100-FoliosSII7623529156120254111230-RSASK-REDACTED.xml",
    61: "CAF-cert-IDK100-FoliosSII7623529161120254111240-RSASK-REDACTED.xml",
    110: "CAF-cert-IDK100-FoliosSII76235291110120256212120-RSASK-REDACTED.xml",
    111: "CAF-cert-IDK100-FoliosSII76235291111120256212121-RSASK-REDACTED.xml",
    112: "CAF-cert-IDK100-FoliosSII76235291112120256212123-RSASK-REDACTED.xml",
}
# Documents whose embedded CAF the SII's production key (IDK 300) signed.
PRODUCTION_DOCS = [
    "samples/sii-dte/DTE--60910000-1--33--2336600.xml",
    "samples/sii-dte/DTE--60910000-1--33--2336600--cleaned.xml",
    "samples/sii-dte/DTE--76354771-K--33--170.xml",
    "samples/sii-dte/DTE--76354771-K--33--170--cleaned.xml",
    "samples/sii-dte/DTE--76399752-9--33--25568.xml",
    "samples/sii-dte/DTE--76399752-9--33--25568--cleaned.xml",
    "samples/sii-dte/DTE--96670340-7--61--110616.xml",
    "samples/sii-dte/DTE--96670340-7--61--110616--cleaned.xml",
    "samples/sii-rtc/AEC--76354771-K--33--170--SEQ-2.xml",
    "samples/sii-rtc/AEC--76399752-9--33--25568--SEQ-1.xml",
]
EMISOR = "76086428-5"


@lru_cache(maxsize=1)
def sii_key() -> rsa.RSAPrivateKey:
    return generate_sii_test_key()


def make_caf(tipo: int = 33, desde: int = 1, hasta: int = 50, **kwargs: object) -> Caf:
    params: dict[str, object] = {
        "sii_key": sii_key(),
        "rut_emisor": EMISOR,
        "razon_social": "EMPRESA DEMO SPA",
        "tipo_dte": tipo,
        "folio_desde": desde,
        "folio_hasta": hasta,
        "fecha_autorizacion": dt.date(2025, 4, 11),
    }
    params.update(kwargs)
    return Caf.from_bytes(make_caf_xml(**params))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def keyring() -> SiiKeyring:
    return SiiKeyring.default()


@pytest.fixture(scope="module")
def trusting() -> SiiKeyring:
    return SiiKeyring.default().with_trusted_key(public_key_pem(sii_key()))


def _real_caf(shared_sii: Path, tipo: int) -> Caf:
    return Caf.from_bytes((shared_sii / "caf" / CAF_FILES[tipo]).read_bytes())


# ----------------------------------------------------------------------------- real CAFs


def test_all_eleven_certification_cafs_are_listed(shared_sii: Path) -> None:
    assert sorted(p.name for p in (shared_sii / "caf").glob("*.xml")) == sorted(CAF_FILES.values())


@pytest.mark.parametrize("tipo", sorted(CAF_FILES))
def test_real_caf_verifies_with_bundled_idk_100_key(
    shared_sii: Path, keyring: SiiKeyring, tipo: int
) -> None:
    caf = _real_caf(shared_sii, tipo)
    assert caf.verify(keyring) == "sii-idk-100"
    assert (caf.tipo_dte, caf.idk, caf.folio_desde, caf.folio_hasta) == (tipo, 100, 1, 20)
    assert caf.rut_emisor == "76235291-5"
    assert caf.razon_social == "DISEÑO Y ENTRETENIMIENTOS WITHIN PLAY LI"
    assert caf.private_key is None  # RSASK is redacted in the shared copies
    assert caf.public_key.key_size == 512
    assert caf.public_key.public_numbers().e == 3


def test_real_caf_is_read_from_iso_8859_1_bytes(shared_sii: Path) -> None:
    raw = (shared_sii / "caf" / CAF_FILES[33]).read_bytes()
    assert b"DISE\xd1O" in raw and b"encoding" not in raw.split(b"\n", 1)[0]
    assert Caf.from_bytes(raw).raw == raw


@pytest.mark.parametrize(
    ("old", "new"),
    [(b"<H>20</H>", b"<H>21</H>"), (b"DISE\xd1O", b"DISENO"), (b"<IDK>100", b"<IDK>101")],
)
def test_caf_with_one_changed_da_byte_fails(
    shared_sii: Path, keyring: SiiKeyring, old: bytes, new: bytes
) -> None:
    raw = (shared_sii / "caf" / CAF_FILES[33]).read_bytes()
    assert raw.count(old) == 1
    caf = Caf.from_bytes(raw.replace(old, new))
    with pytest.raises(CafError) as err:
        caf.verify(keyring)
    assert err.value.code == "caf_signature_invalid"


def test_certification_caf_fails_with_only_the_production_key(
    shared_sii: Path, keyring: SiiKeyring
) -> None:
    with pytest.raises(CafError) as err:
        _real_caf(shared_sii, 33).verify(keyring.restricted_to(300))
    assert err.value.code == "caf_signature_invalid"
    assert "tried: none" in err.value.message


def test_certification_caf_fails_when_its_idk_is_pointed_at_the_production_key(
    shared_sii: Path, keyring: SiiKeyring
) -> None:
    prod_key = keyring.keys_for(300)[0][1]
    only_300_as_100 = SiiKeyring({100: ("sii-idk-300", prod_key)})
    with pytest.raises(CafError, match="IDK 100"):
        _real_caf(shared_sii, 33).verify(only_300_as_100)


def _embedded_cafs(path: Path) -> list[etree._Element]:
    return list(parse_untrusted(path.read_bytes()).iter("{*}CAF"))


def test_caf_inside_official_example_verifies_with_idk_100(
    shared_sii: Path, keyring: SiiKeyring
) -> None:
    cafs = _embedded_cafs(shared_sii / "samples/official/F60T33-ejemplo-oficial-SII.xml")
    assert cafs
    for el in cafs:
        assert Caf.from_element(el).verify(keyring) == "sii-idk-100"


@pytest.mark.parametrize("name", PRODUCTION_DOCS)
def test_caf_inside_real_documents_verifies_with_idk_300(
    shared_sii: Path, keyring: SiiKeyring, name: str
) -> None:
    cafs = _embedded_cafs(shared_sii / name)
    assert cafs
    for el in cafs:
        caf = Caf.from_element(el)
        assert caf.verify(keyring) == "sii-idk-300"
        with pytest.raises(CafError):
            caf.verify(keyring.restricted_to(100))


def test_every_sample_with_a_caf_is_covered(shared_sii: Path) -> None:
    samples = sorted((shared_sii / "samples/sii-dte").glob("*.xml")) + sorted(
        (shared_sii / "samples/sii-rtc").glob("*.xml")
    )
    with_caf = [p for p in samples if b"<CAF" in p.read_bytes()]
    # Every sample file carrying a CAF holds one of the two production CAFs checked above.
    fingerprints = {Caf.from_element(el).fingerprint for p in with_caf for el in _embedded_cafs(p)}
    listed = {
        Caf.from_element(el).fingerprint
        for name in PRODUCTION_DOCS
        for el in _embedded_cafs(shared_sii / name)
    }
    assert fingerprints <= listed


# ----------------------------------------------------------------------------- keyring


def test_bundled_keys_are_the_shared_certificates(shared_sii: Path) -> None:
    from importlib import resources

    bundled = resources.files("dte_core").joinpath("sii_keys")
    for idk in (100, 300):
        assert (
            bundled.joinpath(f"{idk}.cer").read_bytes()
            == (shared_sii / "certs" / f"{idk}.cer").read_bytes()
        )


def test_certificate_with_invalid_version_is_still_read(shared_sii: Path) -> None:
    pem = (shared_sii / "certs/100.cer").read_bytes()
    with pytest.raises(x509.InvalidVersion):
        x509.load_pem_x509_certificate(pem)
    assert load_rsa_public_key(pem).key_size == 512  # same as openssl x509 -text reports


def _self_signed(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SII de pruebas")])
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


@pytest.mark.parametrize("form", ["pem-public-key", "pem-certificate", "der-certificate"])
def test_trusted_key_is_accepted_in_every_form(form: str) -> None:
    key = sii_key()
    cert = _self_signed(key)
    data = {
        "pem-public-key": public_key_pem(key),
        "pem-certificate": cert.public_bytes(serialization.Encoding.PEM),
        "der-certificate": cert.public_bytes(serialization.Encoding.DER),
    }[form]
    caf = make_caf()
    with pytest.raises(CafError):
        caf.verify(SiiKeyring.default())
    label = caf.verify(SiiKeyring.default().with_trusted_key(data))
    assert label.startswith("trusted-")


def test_keys_for_lists_official_then_trusted(keyring: SiiKeyring, trusting: SiiKeyring) -> None:
    assert [label for label, _ in keyring.keys_for(100)] == ["sii-idk-100"]
    labels = [label for label, _ in trusting.keys_for(300)]
    assert labels[0] == "sii-idk-300" and labels[1].startswith("trusted-") and len(labels) == 2
    assert [label.startswith("trusted-") for label, _ in trusting.keys_for(7)] == [True]
    assert keyring.keys_for(7) == []


def test_unreadable_trusted_key_is_refused() -> None:
    with pytest.raises(CafError) as err:
        SiiKeyring.default().with_trusted_key(b"not a key")
    assert err.value.code == "sii_key_unreadable"


# ----------------------------------------------------------------------------- parsing


def test_bare_caf_element_is_accepted(shared_sii: Path, keyring: SiiKeyring) -> None:
    raw = (shared_sii / "caf" / CAF_FILES[52]).read_bytes()
    bare = raw[raw.index(b"<CAF") : raw.index(b"</CAF>") + len(b"</CAF>")]
    caf = Caf.from_bytes(bare)
    assert caf.tipo_dte == 52 and caf.verify(keyring) == "sii-idk-100"
    assert caf.fingerprint == _real_caf(shared_sii, 52).fingerprint


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"<AUTORIZACION><CAF version='1.0'>", "caf_unreadable"),
        (b"<EnvioDTE/>", "caf_unreadable"),
        (b"<AUTORIZACION><RSASK/></AUTORIZACION>", "invalid_caf"),
    ],
)
def test_non_caf_input_raises_caf_error(data: bytes, code: str) -> None:
    with pytest.raises(CafError) as err:
        Caf.from_bytes(data)
    assert err.value.code == code


def test_hostile_caf_file_is_a_security_error(shared_sii: Path) -> None:
    attack = (shared_sii / "samples/xml-attacks/billion-laughs-1.xml").read_bytes()
    with pytest.raises(XmlSecurityError):
        Caf.from_bytes(attack)


def test_dsa_caf_is_refused_clearly(shared_sii: Path) -> None:
    raw = (shared_sii / "caf" / CAF_FILES[33]).read_bytes()
    dsa = re.sub(rb"<RSAPK>.*?</RSAPK>", b"<DSAPK><P>AQ==</P></DSAPK>", raw)
    with pytest.raises(CafError) as err:
        Caf.from_bytes(dsa)
    assert err.value.code == "caf_unsupported_key"


def test_broken_private_key_is_reported() -> None:
    raw = make_caf_xml(
        sii_key=sii_key(), rut_emisor=EMISOR, razon_social="X", tipo_dte=33,
        folio_desde=1, folio_hasta=5, fecha_autorizacion=dt.date(2025, 1, 1),
    )  # fmt: skip
    broken = re.sub(rb"(-----BEGIN RSA PRIVATE KEY-----\n)....", rb"\1!!!!", raw)
    with pytest.raises(CafError) as err:
        Caf.from_bytes(broken)
    assert err.value.code == "caf_private_key_unreadable"


# ----------------------------------------------------------------------------- generated CAFs


def test_generated_caf_has_the_sii_file_shape(shared_sii: Path) -> None:
    raw = make_caf_xml(
        sii_key=sii_key(), rut_emisor="76.086.428-5", razon_social="Ñandú " * 10,
        tipo_dte=33, folio_desde=1, folio_hasta=50, fecha_autorizacion=dt.date(2025, 4, 11),
    )  # fmt: skip
    assert raw.startswith(b'<?xml version="1.0"?>\n<AUTORIZACION>\n<CAF version="1.0">\n<DA>\n')
    assert b"\xd1and\xfa" in raw  # ISO-8859-1 bytes, as the SII writes them
    raw.decode("latin-1")
    ours, real = (
        parse_untrusted(raw),
        parse_untrusted((shared_sii / "caf" / CAF_FILES[33]).read_bytes()),
    )

    def shape(root: etree._Element) -> list[str]:
        return [local_name(el) for el in root.iter()]

    assert shape(ours) == shape(real)
    assert ours.find("CAF/FRMA").get("algoritmo") == "SHA1withRSA"  # type: ignore[union-attr]
    caf = Caf.from_bytes(raw)
    assert caf.razon_social == ("Ñandú " * 10)[:40]
    assert caf.rut_emisor == EMISOR
    assert caf.private_key is not None and caf.matches_private_key()
    assert caf.public_key.public_numbers().e == 3


def test_generated_caf_verifies_only_when_its_key_is_trusted(trusting: SiiKeyring) -> None:
    caf = make_caf()
    with pytest.raises(CafError) as err:
        caf.verify(SiiKeyring.default())
    assert err.value.code == "caf_signature_invalid"
    assert "--trust-sii-key" in err.value.message
    assert caf.verify(trusting).startswith("trusted-")


def test_given_caf_key_is_used_and_mismatched_private_key_is_detected() -> None:
    caf_key = rsa.generate_private_key(public_exponent=3, key_size=1024)
    caf = make_caf(caf_key=caf_key)
    assert caf.public_key.public_numbers() == caf_key.public_key().public_numbers()
    other = rsa.generate_private_key(public_exponent=3, key_size=1024)
    other_pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    swapped = re.sub(
        rb"<RSASK>.*?</RSASK>", b"<RSASK>" + other_pem + b"</RSASK>", caf.raw, flags=re.DOTALL
    )
    assert not Caf.from_bytes(swapped).matches_private_key()


# ----------------------------------------------------------------------------- expiry and use


@pytest.mark.parametrize(
    ("tipo", "fa", "expires"),
    [
        (33, dt.date(2025, 4, 11), dt.date(2025, 10, 11)),
        (61, dt.date(2025, 8, 31), dt.date(2026, 2, 28)),
        (110, dt.date(2024, 12, 15), dt.date(2025, 6, 15)),
        (39, dt.date(2025, 4, 11), None),
        (41, dt.date(2025, 4, 11), None),
    ],
)
def test_expires_on(tipo: int, fa: dt.date, expires: dt.date | None) -> None:
    caf = make_caf(tipo, fecha_autorizacion=fa)
    assert caf.expires_on == expires
    far_future = dt.date(2100, 1, 1)
    assert caf.is_expired(far_future) is (expires is not None)
    if expires is not None:
        assert not caf.is_expired(expires)
        assert caf.is_expired(expires + dt.timedelta(days=1))


def test_real_caf_expiry(shared_sii: Path) -> None:
    assert _real_caf(shared_sii, 33).expires_on == dt.date(2025, 10, 11)
    assert _real_caf(shared_sii, 112).expires_on == dt.date(2025, 12, 21)
    assert _real_caf(shared_sii, 39).expires_on is None


def test_check_usable_accepts_a_good_caf(trusting: SiiKeyring) -> None:
    caf = make_caf()
    caf.check_usable(50, today=dt.date(2025, 5, 1), keyring=trusting, rut_emisor="76.086.428-5")


@pytest.mark.parametrize(
    ("folio", "today", "rut", "trusted", "code"),
    [
        (1, dt.date(2025, 5, 1), None, False, "caf_signature_invalid"),
        (51, dt.date(2025, 5, 1), None, True, "folio_out_of_range"),
        (0, dt.date(2025, 5, 1), None, True, "folio_out_of_range"),
        (1, dt.date(2025, 10, 12), None, True, "caf_expired"),
        (1, dt.date(2025, 5, 1), "76354771-K", True, "caf_wrong_emisor"),
    ],
)
def test_check_usable_failure_codes(
    trusting: SiiKeyring,
    folio: int,
    today: dt.date,
    rut: str | None,
    trusted: bool,
    code: str,
) -> None:
    caf = make_caf()
    keyring = trusting if trusted else SiiKeyring.default()
    with pytest.raises(CafError) as err:
        caf.check_usable(folio, today=today, keyring=keyring, rut_emisor=rut)
    assert err.value.code == code


def test_check_usable_without_private_key(shared_sii: Path, keyring: SiiKeyring) -> None:
    caf = _real_caf(shared_sii, 39)
    with pytest.raises(CafError) as err:
        caf.check_usable(5, today=dt.date(2030, 1, 1), keyring=keyring, rut_emisor="76235291-5")
    assert err.value.code == "caf_no_private_key"


def test_select_caf_picks_the_range_holding_the_folio() -> None:
    first, second, guia = make_caf(33, 1, 10), make_caf(33, 11, 20), make_caf(52, 1, 20)
    cafs = [first, second, guia]
    assert select_caf(cafs, 33, 10) is first
    assert select_caf(cafs, 33, 11) is second
    assert select_caf(cafs, 52, 11) is guia
    with pytest.raises(CafError) as err:
        select_caf(cafs, 33, 21)
    assert err.value.code == "no_caf_for_folio"
    assert "1-10, 11-20" in err.value.message
    with pytest.raises(CafError):
        select_caf(cafs, 61, 1)


def test_fingerprint_is_stable_and_distinct(shared_sii: Path) -> None:
    a, b = _real_caf(shared_sii, 33), _real_caf(shared_sii, 33)
    assert a.fingerprint == b.fingerprint
    assert re.fullmatch(r"[0-9a-f]{64}", a.fingerprint)
    assert len({_real_caf(shared_sii, t).fingerprint for t in CAF_FILES}) == len(CAF_FILES)
    assert Caf.from_element(a.caf_element).fingerprint == a.fingerprint
