from __future__ import annotations

import socket
from pathlib import Path

import pytest
from lxml import etree

from dte_core import xmlsafe
from dte_core.errors import XmlParseError, XmlSecurityError
from dte_core.xmlsafe import (
    DEFAULT_MAX_BYTES,
    SII_NS,
    local_name,
    parse_untrusted,
    sii_bytes,
    strip_namespaces,
)

ATTACKS = [
    "billion-laughs-1.xml",
    "billion-laughs-2.xml",
    "external-entity-expansion-remote.xml",
    "quadratic-blowup-entity-expansion.xml",
]


def test_every_attack_sample_is_listed(shared_sii: Path) -> None:
    names = sorted(p.name for p in (shared_sii / "samples/xml-attacks").iterdir())
    assert names == sorted(ATTACKS)


@pytest.fixture
def network_calls(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record any attempt to resolve or connect (the suite guard would raise; we also count)."""
    calls: list[object] = []

    def connect(self: socket.socket, address: object) -> None:
        calls.append(address)
        raise OSError("network disabled in this test")

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> list[object]:
        calls.append(host)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls


@pytest.fixture
def parser_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Record what reaches libxml2: hostile prologs must be refused before it."""
    calls: list[bytes] = []
    real = etree.fromstring

    def spy(data: bytes, parser: etree.XMLParser | None = None) -> etree._Element:
        calls.append(data)
        return real(data, parser)

    monkeypatch.setattr(xmlsafe.etree, "fromstring", spy)
    return calls


@pytest.mark.parametrize("name", ATTACKS)
def test_attack_is_refused_before_parsing(
    shared_sii: Path, network_calls: list[object], parser_calls: list[bytes], name: str
) -> None:
    data = (shared_sii / "samples/xml-attacks" / name).read_bytes()
    with pytest.raises(XmlSecurityError) as err:
        parse_untrusted(data)
    assert err.value.code == "hostile_xml"
    assert network_calls == []
    assert parser_calls == []  # nothing was handed to the parser, so nothing could expand


@pytest.mark.parametrize(
    "data",
    [
        b'<?xml version="1.0"?>\n<!-- c -->\n<!doctype r [<!ENTITY e "x">]><r>&e;</r>',
        b"<?xml version='1.0' encoding='ISO-8859-1'?><!DOCTYPE r SYSTEM 'http://example.com/x.dtd'><r/>",
        b"\xef\xbb\xbf<!DOCTYPE r [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><r>&e;</r>",
    ],
)
def test_doctype_variants_are_refused(network_calls: list[object], data: bytes) -> None:
    with pytest.raises(XmlSecurityError):
        parse_untrusted(data)
    assert network_calls == []


def test_doctype_text_inside_content_is_not_an_attack() -> None:
    root = parse_untrusted(b"<r><![CDATA[<!DOCTYPE x>]]><!-- <!ENTITY -->text</r>")
    assert "<!DOCTYPE x>" in (root.text or "")


def test_oversized_input_is_refused(parser_calls: list[bytes]) -> None:
    data = b"<r>" + b"x" * 200 + b"</r>"
    with pytest.raises(XmlSecurityError):
        parse_untrusted(data, max_bytes=100)
    assert parse_untrusted(data, max_bytes=len(data)).text == "x" * 200
    too_big = b"<r>" + b" " * (DEFAULT_MAX_BYTES - 6) + b"</r>"
    with pytest.raises(XmlSecurityError):
        parse_untrusted(too_big)
    assert len(parser_calls) == 1  # only the accepted document reached the parser


def test_undeclared_iso_8859_1_is_read(shared_sii: Path) -> None:
    root = parse_untrusted(b"<RS>DISE\xd1O \xc1REA</RS>")
    assert root.text == "DISEÑO ÁREA"
    caf_file = next((shared_sii / "caf").glob("*.xml"))
    rs = parse_untrusted(caf_file.read_bytes()).find("CAF/DA/RS")
    assert rs is not None and rs.text is not None and "DISEÑO" in rs.text


def test_declared_and_utf8_encodings_are_respected() -> None:
    assert parse_untrusted("<a>Ñ</a>".encode()).text == "Ñ"
    declared = '<?xml version="1.0" encoding="ISO-8859-1"?><a>Ñ</a>'.encode("latin-1")
    assert parse_untrusted(declared).text == "Ñ"


@pytest.mark.parametrize("data", [b"<a><b></a>", b"", b"not xml", b"<a>&undefined;</a>"])
def test_malformed_xml_is_a_parse_error_not_a_security_error(data: bytes) -> None:
    with pytest.raises(XmlParseError) as err:
        parse_untrusted(data)
    assert not isinstance(err.value, XmlSecurityError)
    assert err.value.code == "unreadable_xml"


def test_sii_bytes_strips_whitespace_and_namespaces() -> None:
    source = (
        f'<Documento xmlns="{SII_NS}" xmlns:ds="http://www.w3.org/2000/09/xmldsig#">\n'
        '  <TED version="1.0">\n'
        "    <DD>\n"
        "      <RE>76086428-5</RE>\n"
        "      <RSR>Ñandú  y Cía </RSR>\n"
        "      <MNT>119000</MNT>\n"
        "    </DD>\n"
        '    <FRMT algoritmo="SHA1withRSA">AAE=</FRMT>\n'
        "  </TED>\n"
        "</Documento>\n"
    ).encode()
    ted = parse_untrusted(source)[0]
    assert sii_bytes(ted) == (
        b'<TED version="1.0"><DD><RE>76086428-5</RE><RSR>\xd1and\xfa  y C\xeda </RSR>'
        b'<MNT>119000</MNT></DD><FRMT algoritmo="SHA1withRSA">AAE=</FRMT></TED>'
    )
    # The source element is left untouched.
    assert etree.QName(ted).namespace == SII_NS and ted.text is not None


def test_sii_bytes_of_a_prefixed_element() -> None:
    root = etree.fromstring(b'<s:DA xmlns:s="urn:x"><s:RE> 1-9 </s:RE>\n<s:TD>33</s:TD></s:DA>')
    assert sii_bytes(root) == b"<DA><RE> 1-9 </RE><TD>33</TD></DA>"


def test_strip_namespaces_and_local_name() -> None:
    root = etree.fromstring(f'<a xmlns="{SII_NS}"><b/></a>'.encode())
    clone = strip_namespaces(root)
    assert clone.tag == "a" and clone[0].tag == "b"
    assert etree.tostring(clone) == b"<a><b/></a>"
    assert local_name(root[0]) == "b"
