"""Hardened XML parsing and the SII's byte serialisation for its own signatures.

Untrusted XML only enters through :func:`parse_untrusted`: no DTD, no entities, no network,
a size cap, and hostile constructs refused *before* the parser could expand anything.
"""

from __future__ import annotations

import copy
import re
from typing import Final, cast

from lxml import etree

from dte_core.errors import XmlParseError, XmlSecurityError

SII_NS: Final = "http://www.sii.cl/SiiDte"
DSIG_NS: Final = "http://www.w3.org/2000/09/xmldsig#"
XSI_NS: Final = "http://www.w3.org/2001/XMLSchema-instance"

#: Largest XML document accepted from outside (an EnvioDTE of 2 000 boletas is ~10 MiB).
DEFAULT_MAX_BYTES: Final = 20 * 1024 * 1024

# A DOCTYPE or ENTITY declaration can only appear in the prolog, before the root element;
# scanning for it is cheap and refuses billion-laughs / XXE without parsing a byte of it.
_HOSTILE_PROLOG = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_XML_DECL_ENCODING = re.compile(rb"^\s*<\?xml[^>]*encoding=[\"']([A-Za-z0-9._-]+)[\"']")


def _parser(encoding: str | None = None) -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
        remove_pis=True,
        encoding=encoding,
    )


def parse_untrusted(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """Parse bytes from outside and return the root element.

    Documents without an encoding declaration that are not valid UTF-8 are read as
    ISO-8859-1: the SII's CAF files are written that way.

    Raises :class:`XmlSecurityError` for hostile input and :class:`XmlParseError` for
    input that is not well-formed.
    """
    if len(data) > max_bytes:
        raise XmlSecurityError(
            f"XML of {len(data)} bytes exceeds the limit of {max_bytes} bytes; "
            "split the envelope or raise the limit in settings"
        )
    if _HOSTILE_PROLOG.search(data, 0, _first_element_start(data)):
        raise XmlSecurityError(
            "XML with a DOCTYPE or ENTITY declaration is refused: DTE files never need one"
        )
    encoding = None
    if not _XML_DECL_ENCODING.match(data):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            encoding = "ISO-8859-1"
    try:
        root = etree.fromstring(data, _parser(encoding))
    except etree.XMLSyntaxError as exc:
        raise XmlParseError(f"not well-formed XML: {exc}") from exc
    tree = root.getroottree()
    if getattr(tree.docinfo, "doctype", None) or any(
        isinstance(node, etree._Entity) for node in root.iter(etree.Entity)
    ):
        raise XmlSecurityError("XML entities are refused")
    return root


def _first_element_start(data: bytes) -> int:
    """Offset of the root element's ``<`` (skipping declaration, comments and PIs)."""
    pos = 0
    while True:
        pos = data.find(b"<", pos)
        if pos < 0 or pos + 1 >= len(data):
            return len(data)
        nxt = data[pos + 1 : pos + 2]
        if nxt in (b"?", b"!"):
            if data.startswith(b"<!--", pos):
                end = data.find(b"-->", pos)
                pos = len(data) if end < 0 else end + 3
                continue
            if nxt == b"!":  # a declaration before the root: the hostile scan sees it
                return len(data)
            end = data.find(b">", pos)
            pos = len(data) if end < 0 else end + 1
            continue
        return pos


def local_name(el: etree._Element) -> str:
    return etree.QName(el).localname


def strip_namespaces(el: etree._Element) -> etree._Element:
    """Return a deep copy of ``el`` with every element in no namespace."""
    clone = copy.deepcopy(el)
    for node in clone.iter():
        if isinstance(node.tag, str):
            node.tag = etree.QName(node).localname
    etree.cleanup_namespaces(clone)
    return clone


def sii_bytes(el: etree._Element) -> bytes:
    """The serialisation the SII signs for CAF ``FRMA`` and TED ``FRMT``.

    The element with no whitespace between tags, no namespace declarations, ISO-8859-1.
    """
    clone = strip_namespaces(el)
    for node in clone.iter():
        if len(node) and node.text is not None and not node.text.strip():
            node.text = None
        if node.tail is not None and not node.tail.strip():
            node.tail = None
    clone.tail = None
    return cast(bytes, etree.tostring(clone, encoding="ISO-8859-1", xml_declaration=False))
