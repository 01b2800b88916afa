"""`verify_xml` reproduces every measured outcome of ../shared/sii/README.md for received files."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from dte_core.caf import SiiKeyring
from dte_core.errors import XmlSecurityError
from dte_core.received import verify_xml

KEYRING = SiiKeyring.default()


def _verify(shared_sii: Path, rel: str):  # type: ignore[no-untyped-def]
    return verify_xml((shared_sii / "samples" / rel).read_bytes(), keyring=KEYRING)


@pytest.mark.parametrize(
    ("name", "context"),
    [
        ("DTE--76354771-K--33--170--cleaned.xml", "in_place"),
        ("DTE--76399752-9--33--25568--cleaned.xml", "in_place"),
        ("DTE--60910000-1--33--2336600.xml", "in_place"),
        # signed without the namespace, then cleaned: only the re-rooted copy verifies
        ("DTE--60910000-1--33--2336600--cleaned.xml", "without_sii_namespace"),
        ("DTE--96670340-7--61--110616--cleaned.xml", "without_sii_namespace"),
        # downloaded without xmlns but signed with it: verifies once the namespace is restored
        ("DTE--76354771-K--33--170.xml", "namespace_restored"),
        ("DTE--76399752-9--33--25568.xml", "namespace_restored"),
    ],
)
def test_real_documents_are_authentic_and_valid(shared_sii: Path, name: str, context: str) -> None:
    report = _verify(shared_sii, f"sii-dte/{name}")
    (doc,) = report.documents
    assert doc.ted.valid, doc.ted.errors
    assert doc.caf.valid and doc.caf.detail["idk"] == 300
    assert doc.signature.valid, doc.signature.errors
    assert doc.signature.detail["context"] == context
    assert report.valid
    assert report.namespace_repaired is ("cleaned" not in name)


def test_doc_personalizado_is_authentic_but_schema_invalid(shared_sii: Path) -> None:
    report = _verify(shared_sii, "sii-dte/DTE--96670340-7--61--110616.xml")
    (doc,) = report.documents
    assert doc.authentic
    assert doc.signature.detail["context"] == "in_place"
    assert not doc.xsd.valid and any("DocPersonalizado" in e for e in doc.xsd.errors)
    assert not report.valid


def test_changed_monto_fails_ted_and_signature(shared_sii: Path) -> None:
    (doc,) = _verify(
        shared_sii, "sii-dte/DTE--76354771-K--33--170--cleaned-mod-changed-monto.xml"
    ).documents
    assert not doc.ted.valid
    assert not doc.signature.valid
    assert doc.caf.valid  # the CAF itself is genuine


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("DTE--76354771-K--33--170--cleaned-mod-empty-emails.xml", "digest"),
        ("DTE--76354771-K--33--170--cleaned-mod-replaced-cert.xml", "signature"),
        ("DTE--76354771-K--33--170--cleaned-mod-removed-signature.xml", "not signed"),
        ("DTE--76354771-K--33--170--cleaned-mod-bad-cert-no-base64.xml", "certificate"),
    ],
)
def test_tampered_documents_are_not_authentic(shared_sii: Path, name: str, reason: str) -> None:
    report = _verify(shared_sii, f"sii-dte/{name}")
    (doc,) = report.documents
    assert not doc.signature.valid
    assert reason in " ".join(doc.signature.errors).lower()
    assert not report.valid


def test_official_envio_follows_the_tolerant_rule(shared_sii: Path) -> None:
    report = _verify(shared_sii, "official/F60T33-ejemplo-oficial-SII.xml")
    (doc,) = report.documents
    assert doc.ted.valid and doc.caf.valid and doc.caf.detail["idk"] == 100
    assert doc.signature.detail["context"] == "without_sii_namespace"
    (setdoc,) = report.envelope_signatures
    assert setdoc.valid and setdoc.detail["key_source"] == "key_value"
    assert report.xsd.valid
    assert report.valid


@pytest.mark.parametrize(
    "name", ["AEC--76354771-K--33--170--SEQ-2.xml", "AEC--76399752-9--33--25568--SEQ-1.xml"]
)
def test_dtes_inside_aec_have_valid_stamps(shared_sii: Path, name: str) -> None:
    report = _verify(shared_sii, f"sii-rtc/{name}")
    assert report.xsd.valid
    assert report.documents
    for doc in report.documents:
        assert doc.ted.valid and doc.caf.valid


@pytest.mark.parametrize(
    "name",
    [
        "billion-laughs-1.xml",
        "billion-laughs-2.xml",
        "external-entity-expansion-remote.xml",
        "quadratic-blowup-entity-expansion.xml",
    ],
)
def test_attacks_are_refused(shared_sii: Path, name: str) -> None:
    with pytest.raises(XmlSecurityError):
        _verify(shared_sii, f"xml-attacks/{name}")


# --- README §2-§4, one test per measured outcome, through the verifier ------------------------

REAL_DTES = [
    "DTE--60910000-1--33--2336600",
    "DTE--76354771-K--33--170",
    "DTE--76399752-9--33--25568",
    "DTE--96670340-7--61--110616",
]


@pytest.mark.parametrize("variant", ["", "--cleaned"])
@pytest.mark.parametrize("stem", REAL_DTES)
def test_ted_and_production_caf_verify_for_every_real_dte(
    shared_sii: Path, stem: str, variant: str
) -> None:
    (doc,) = _verify(shared_sii, f"sii-dte/{stem}{variant}.xml").documents
    assert doc.ted.valid, doc.ted.errors
    assert doc.ted.detail == {"frmt_valid": True, "matches_document": True}
    assert doc.caf.valid and doc.caf.detail["idk"] == 300
    assert doc.authentic


def test_ted_of_official_envio_verifies_with_certification_caf(shared_sii: Path) -> None:
    (doc,) = _verify(shared_sii, "official/F60T33-ejemplo-oficial-SII.xml").documents
    assert doc.ted.valid and doc.caf.detail["idk"] == 100 and doc.caf.detail["key"] == "sii-idk-100"


@pytest.mark.parametrize("stem", REAL_DTES)
def test_cleaned_downloads_are_schema_valid_as_they_are(shared_sii: Path, stem: str) -> None:
    report = _verify(shared_sii, f"sii-dte/{stem}--cleaned.xml")
    assert report.xsd.valid, report.xsd.errors
    assert report.xsd.detail["schema"] == "dte/DTE_v10.xsd"
    assert not report.namespace_repaired


@pytest.mark.parametrize("stem", REAL_DTES)
def test_raw_downloads_are_schema_invalid_until_the_namespace_is_repaired(
    shared_sii: Path, stem: str
) -> None:
    from dte_core import xsd
    from dte_core.received import repair_namespace
    from dte_core.xmlsafe import SII_NS, parse_untrusted

    root = parse_untrusted((shared_sii / "samples" / "sii-dte" / f"{stem}.xml").read_bytes())
    assert xsd.validate(root, xsd.Schema.DTE)  # no xmlns on <DTE>: nothing matches the schema
    repaired, changed = repair_namespace(root)
    assert changed and repaired.nsmap.get(None) == SII_NS  # default namespace, not a prefix
    report = _verify(shared_sii, f"sii-dte/{stem}.xml")
    assert report.namespace_repaired
    # the one exception: an unsigned <DocPersonalizado> after the Signature
    assert report.xsd.valid is (stem != "DTE--96670340-7--61--110616")


def test_repair_keeps_the_document_byte_for_byte_as_signed(shared_sii: Path) -> None:
    """Restoring the namespace yields exactly the published `--cleaned` file (same C14N)."""
    from dte_core.received import repair_namespace
    from dte_core.xmlsafe import parse_untrusted

    folder = shared_sii / "samples" / "sii-dte"
    raw = parse_untrusted((folder / "DTE--76354771-K--33--170.xml").read_bytes())
    cleaned = parse_untrusted((folder / "DTE--76354771-K--33--170--cleaned.xml").read_bytes())
    repaired, _ = repair_namespace(raw)
    assert etree.tostring(repaired, method="c14n") == etree.tostring(cleaned, method="c14n")


def test_repair_leaves_namespaced_documents_alone(shared_sii: Path) -> None:
    from dte_core.received import repair_namespace
    from dte_core.xmlsafe import parse_untrusted

    root = parse_untrusted(
        (shared_sii / "samples" / "sii-dte" / "DTE--76354771-K--33--170--cleaned.xml").read_bytes()
    )
    assert repair_namespace(root) == (root, False)


@pytest.mark.parametrize(
    "name",
    [
        "DTE--76354771-K--33--170--cleaned-mod-empty-emails.xml",
        "DTE--76354771-K--33--170--cleaned-mod-removed-signature.xml",
        "DTE--76354771-K--33--170--cleaned-mod-bad-cert-no-base64.xml",
    ],
)
def test_tampered_files_that_break_the_schema(shared_sii: Path, name: str) -> None:
    report = _verify(shared_sii, f"sii-dte/{name}")
    assert not report.xsd.valid and report.xsd.errors
    (doc,) = report.documents
    assert not doc.xsd.valid


@pytest.mark.parametrize(
    "name",
    [
        "DTE--76354771-K--33--170--cleaned-mod-changed-monto.xml",
        "DTE--76354771-K--33--170--cleaned-mod-replaced-cert.xml",
        "DTE--76354771-K--33--170--cleaned-mod-bad-cert.xml",
    ],
)
def test_tampered_files_that_keep_the_schema(shared_sii: Path, name: str) -> None:
    report = _verify(shared_sii, f"sii-dte/{name}")
    assert report.xsd.valid
    assert not report.valid


def test_official_envio_is_a_valid_enviodte(shared_sii: Path) -> None:
    report = _verify(shared_sii, "official/F60T33-ejemplo-oficial-SII.xml")
    assert report.root == "EnvioDTE"
    assert report.xsd.detail["schema"] == "dte/EnvioDTE_v10.xsd" and report.xsd.valid


@pytest.mark.parametrize(
    "name", ["AEC--76354771-K--33--170--SEQ-2.xml", "AEC--76399752-9--33--25568--SEQ-1.xml"]
)
def test_aecs_are_valid_against_the_aec_schema(shared_sii: Path, name: str) -> None:
    report = _verify(shared_sii, f"sii-rtc/{name}")
    assert report.xsd.detail["schema"] == "aec/AEC_v10.xsd" and report.xsd.valid


def _signature(shared_sii: Path, rel: str, *, tolerant: bool):  # type: ignore[no-untyped-def]
    from dte_core.signing import verify_signature
    from dte_core.xmlsafe import DSIG_NS, parse_untrusted

    root = parse_untrusted((shared_sii / "samples" / rel).read_bytes())
    return verify_signature(root.find(f"{{{DSIG_NS}}}Signature"), tolerant=tolerant)


@pytest.mark.parametrize(
    ("name", "in_place"),
    [
        ("DTE--76354771-K--33--170--cleaned.xml", True),
        ("DTE--76399752-9--33--25568--cleaned.xml", True),
        ("DTE--76354771-K--33--170.xml", False),  # signed with the namespace
        ("DTE--76399752-9--33--25568.xml", False),
        ("DTE--60910000-1--33--2336600.xml", True),
        ("DTE--96670340-7--61--110616.xml", True),
        ("DTE--60910000-1--33--2336600--cleaned.xml", False),  # signed without it
        ("DTE--96670340-7--61--110616--cleaned.xml", False),
    ],
)
def test_signature_where_it_stands_matches_the_readme(
    shared_sii: Path, name: str, in_place: bool
) -> None:
    assert _signature(shared_sii, f"sii-dte/{name}", tolerant=False).valid is in_place


@pytest.mark.parametrize("name", ["DTE--76354771-K--33--170.xml", "DTE--76399752-9--33--25568.xml"])
def test_raw_variants_fail_the_three_contexts_and_need_the_repair(
    shared_sii: Path, name: str
) -> None:
    """README §4: the raw downloads do not verify in place, in <DTE> alone nor without the
    namespace; only the namespace repair that ingestion performs (§3) restores what was signed."""
    check = _signature(shared_sii, f"sii-dte/{name}", tolerant=True)
    assert not check.valid and "digest mismatch" in (check.reason or "")
    (doc,) = _verify(shared_sii, f"sii-dte/{name}").documents
    assert doc.signature.valid and doc.signature.detail["context"] == "namespace_restored"


def test_changed_monto_fails_on_the_digest(shared_sii: Path) -> None:
    (doc,) = _verify(
        shared_sii, "sii-dte/DTE--76354771-K--33--170--cleaned-mod-changed-monto.xml"
    ).documents
    assert "digest" in " ".join(doc.signature.errors).lower()
    assert doc.ted.detail["frmt_valid"] is False


def test_envelope_signature_is_checked_where_it_stands(shared_sii: Path) -> None:
    """The SetDoc of F60T33 verifies only with its RSAKeyValue, never by moving it."""
    check = _signature(shared_sii, "official/F60T33-ejemplo-oficial-SII.xml", tolerant=False)
    assert check.valid and check.context == "in_place" and check.key_source == "key_value"
    assert check.signer_subject is None  # the certificate is not the key that signed


def test_lone_signature_validates_against_dte_schema(shared_sii: Path) -> None:
    report = _verify(shared_sii, "sii-dte/DTE--76354771-K--33--170--cleaned-signature_xml.xml")
    assert report.root == "Signature"
    assert report.xsd.valid and report.xsd.detail["schema"] == "dte/DTE_v10.xsd"
    assert report.documents == [] and not report.valid  # nothing to vouch for


def test_namespace_repair_is_no_loophole(shared_sii: Path) -> None:
    """A changed amount in a raw download fails under the repaired namespace too."""
    raw = (shared_sii / "samples" / "sii-dte" / "DTE--76354771-K--33--170.xml").read_bytes()
    forged = raw.replace(b"<MntTotal>2996301</MntTotal>", b"<MntTotal>2996300</MntTotal>", 1)
    assert forged != raw
    (doc,) = verify_xml(forged, keyring=KEYRING).documents
    assert not doc.signature.valid and not doc.ted.valid


def _files_with_dtes(shared_sii: Path) -> list[Path]:
    folders = ("sii-dte", "sii-rtc")
    return [
        p
        for folder in folders
        for p in sorted((shared_sii / "samples" / folder).glob("*.xml"))
        if b"<CAF" in p.read_bytes()
    ]


def test_every_caf_inside_the_real_samples_is_a_production_caf(shared_sii: Path) -> None:
    """README §1: the CAFs inside sii-dte and sii-rtc verify with the IDK 300 key."""
    files = _files_with_dtes(shared_sii)
    assert len(files) >= 15
    for path in files:
        report = verify_xml(path.read_bytes(), keyring=KEYRING.restricted_to(300))
        if report.root == "Documento":  # the bare signed data of a DTE: no <DTE> to judge
            continue
        assert report.documents, path.name
        for doc in report.documents:
            assert doc.caf.valid and doc.caf.detail["idk"] == 300, (path.name, doc.caf.errors)


def test_certification_caf_does_not_verify_with_the_production_key(shared_sii: Path) -> None:
    (doc,) = verify_xml(
        (shared_sii / "samples" / "official" / "F60T33-ejemplo-oficial-SII.xml").read_bytes(),
        keyring=KEYRING.restricted_to(300),
    ).documents
    assert not doc.caf.valid and not doc.authentic
