"""Schema oracles from ../shared/sii/README.md point 3, and the vendored copy's integrity."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from dte_core import xsd
from dte_core.received import repair_namespace
from dte_core.xmlsafe import parse_untrusted


def _root(path: Path):  # type: ignore[no-untyped-def]
    return parse_untrusted(path.read_bytes())


def test_vendored_schemas_are_byte_identical(shared_sii: Path) -> None:
    shared = shared_sii / "schemas"
    vendored = xsd.schemas_dir()
    shared_files = sorted(p.relative_to(shared) for p in shared.rglob("*.xsd"))
    vendored_files = sorted(p.relative_to(vendored) for p in vendored.rglob("*.xsd"))
    assert shared_files == vendored_files
    for rel in shared_files:
        assert filecmp.cmp(shared / rel, vendored / rel, shallow=False), rel


CLEANED = [
    "DTE--60910000-1--33--2336600--cleaned.xml",
    "DTE--76354771-K--33--170--cleaned.xml",
    "DTE--76399752-9--33--25568--cleaned.xml",
    "DTE--96670340-7--61--110616--cleaned.xml",
]


@pytest.mark.parametrize("name", CLEANED)
def test_cleaned_samples_are_valid(shared_sii: Path, name: str) -> None:
    assert xsd.validate(_root(shared_sii / "samples/sii-dte" / name)) == []


@pytest.mark.parametrize(
    ("name", "valid_after_repair"),
    [
        ("DTE--60910000-1--33--2336600.xml", True),
        ("DTE--76354771-K--33--170.xml", True),
        ("DTE--76399752-9--33--25568.xml", True),
        # carries an unsigned <DocPersonalizado> after the Signature: stays schema-invalid
        ("DTE--96670340-7--61--110616.xml", False),
    ],
)
def test_raw_downloads_need_the_namespace(
    shared_sii: Path, name: str, valid_after_repair: bool
) -> None:
    root = _root(shared_sii / "samples/sii-dte" / name)
    assert xsd.validate(root, xsd.Schema.DTE) != []
    repaired, changed = repair_namespace(root)
    assert changed
    assert (xsd.validate(repaired) == []) is valid_after_repair


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("DTE--76354771-K--33--170--cleaned-mod-empty-emails.xml", "Contacto"),
        ("DTE--76354771-K--33--170--cleaned-mod-removed-signature.xml", "Missing child"),
        ("DTE--76354771-K--33--170--cleaned-mod-bad-cert-no-base64.xml", "X509Certificate"),
    ],
)
def test_broken_samples_are_invalid(shared_sii: Path, name: str, needle: str) -> None:
    findings = xsd.validate(_root(shared_sii / "samples/sii-dte" / name))
    assert findings
    assert any(needle in f.message for f in findings)


def test_official_example_is_a_valid_envio(shared_sii: Path) -> None:
    root = _root(shared_sii / "samples/official/F60T33-ejemplo-oficial-SII.xml")
    assert xsd.schema_for(root) is xsd.Schema.ENVIO_DTE
    assert xsd.validate(root) == []


@pytest.mark.parametrize(
    "name", ["AEC--76354771-K--33--170--SEQ-2.xml", "AEC--76399752-9--33--25568--SEQ-1.xml"]
)
def test_aec_samples_are_valid(shared_sii: Path, name: str) -> None:
    root = _root(shared_sii / "samples/sii-rtc" / name)
    assert xsd.schema_for(root) is xsd.Schema.AEC
    assert xsd.validate(root) == []


def test_lone_signature_validates_against_dte_schema(shared_sii: Path) -> None:
    root = _root(shared_sii / "samples/sii-dte/DTE--76354771-K--33--170--cleaned-signature_xml.xml")
    assert xsd.validate(root, xsd.Schema.DTE) == []


def test_unknown_root_is_a_finding_not_a_crash() -> None:
    findings = xsd.validate(parse_untrusted(b"<Factura/>"))
    assert findings and "no SII schema" in findings[0].message
