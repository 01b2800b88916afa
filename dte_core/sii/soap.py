"""The SII's SOAP dialects, both directions, so client and simulator speak the same bytes.

* DTEWS (CrSeed, GetTokenFromSeed, QueryEstUp, QueryEstDte): Apache Axis rpc/encoded. Every
  answer is one ``xsd:string`` holding an entity-encoded ``<SII:RESPUESTA>`` document
  (AUT §5.2.3, EUP §3.4.1) — XML inside XML, decoded by the SOAP parser and parsed again.
* registroreclamodteservice: JAX-WS document/literal (RCL annex), ``<return>`` with children.

Answers come from outside: every byte goes through :func:`dte_core.xmlsafe.parse_untrusted`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from lxml import etree

from dte_core.errors import XmlParseError
from dte_core.sii.errors import SiiProtocolError
from dte_core.xmlsafe import local_name, parse_untrusted

SOAP_ENV: Final = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_ENC: Final = "http://schemas.xmlsoap.org/soap/encoding/"
XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
XSD: Final = "http://www.w3.org/2001/XMLSchema"
#: Namespace of ``SII:RESPUESTA`` in the manuals' decoded answers.
SII_SCHEMA_NS: Final = "http://www.sii.cl/XMLSchema"
#: Namespace of registroreclamodteservice (RCL annex, ``ns2:`` of every answer).
RECLAMO_NS: Final = "http://ws.registroreclamodte.diii.sdi.sii.cl"
_XML_DECL: Final = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def dtews_namespace(host: str, service: str) -> str:
    """``https://maullin.sii.cl/DTEWS/QueryEstUp.jws``: the rpc namespace is the endpoint URL."""
    return f"https://{host}/DTEWS/{service}.jws"


# --------------------------------------------------------------------------- rpc/encoded


def rpc_request(namespace: str, method: str, params: Sequence[tuple[str, str]]) -> bytes:
    """A request exactly as AUT §4.1.2/§4.1.4 and EUP §3.1.1 show it."""
    nsmap = {"SOAP-ENV": SOAP_ENV, "SOAP-ENC": SOAP_ENC, "xsi": XSI, "xsd": XSD}
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap=nsmap)
    env.set(f"{{{SOAP_ENV}}}encodingStyle", SOAP_ENC)
    body = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
    call = etree.SubElement(body, f"{{{namespace}}}{method}", nsmap={"m": namespace})
    for name, value in params:
        param = etree.SubElement(call, name)
        param.set(f"{{{XSI}}}type", "xsd:string")
        param.text = value  # lxml entity-encodes it: "todo el elemento debe estar codificado"
    return _XML_DECL + etree.tostring(env, encoding="UTF-8")


@dataclass(frozen=True)
class RpcCall:
    method: str
    params: dict[str, str]


def parse_rpc_request(data: bytes) -> RpcCall:
    """Server side: the method and its string parameters."""
    call = _body_child(parse_xml(data, "SOAP request"))
    return RpcCall(
        method=local_name(call),
        params={local_name(p): p.text or "" for p in call if isinstance(p.tag, str)},
    )


def rpc_response(namespace: str, method: str, inner: bytes) -> bytes:
    """Server side: ``<ns1:{method}Response><{method}Return>`` with the inner XML as text."""
    nsmap = {"soapenv": SOAP_ENV, "xsd": XSD, "xsi": XSI}
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap=nsmap)
    body = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
    resp = etree.SubElement(body, f"{{{namespace}}}{method}Response", nsmap={"ns1": namespace})
    resp.set(f"{{{SOAP_ENV}}}encodingStyle", SOAP_ENC)
    ret = etree.SubElement(resp, f"{method}Return")
    ret.set(f"{{{XSI}}}type", "xsd:string")
    ret.text = inner.decode("utf-8")
    return _XML_DECL + etree.tostring(env, encoding="UTF-8")


def parse_rpc_response(data: bytes, method: str) -> etree._Element:
    """Client side: decode ``{method}Return`` and parse the ``SII:RESPUESTA`` inside it."""
    response = _body_child(parse_xml(data, f"{method} answer"))
    if local_name(response) != f"{method}Response":
        raise SiiProtocolError(f"expected <{method}Response>, got <{local_name(response)}>")
    ret = next((el for el in response if isinstance(el.tag, str)), None)
    if ret is None or not (ret.text or "").strip():
        raise SiiProtocolError(f"<{method}Response> carries no {method}Return string")
    inner = parse_xml(ret.text.strip().encode("utf-8"), f"{method}Return")  # type: ignore[union-attr]
    if local_name(inner) != "RESPUESTA":
        raise SiiProtocolError(f"{method}Return holds <{local_name(inner)}>, not SII:RESPUESTA")
    return inner


# --------------------------------------------------------------------------- SII:RESPUESTA

Fields = Iterable[tuple[str, str | None]]


def respuesta(
    hdr: Fields, body: Fields | None = None, *, trailer: Fields = (), body_first: bool = False
) -> bytes:
    """``<SII:RESPUESTA>`` with un-prefixed children, as the manuals print them."""
    root = etree.Element(f"{{{SII_SCHEMA_NS}}}RESPUESTA", nsmap={"SII": SII_SCHEMA_NS})
    parts: list[tuple[str, Fields]] = [("RESP_HDR", hdr)]
    if body is not None:
        parts.insert(0 if body_first else 1, ("RESP_BODY", body))
    for tag, fields in parts:
        section = etree.SubElement(root, f"{{{SII_SCHEMA_NS}}}{tag}")
        for name, value in fields:
            etree.SubElement(section, name).text = value
    for name, value in trailer:
        etree.SubElement(root, name).text = value
    return _XML_DECL + etree.tostring(root, encoding="UTF-8")


def parse_respuesta(data: bytes, what: str) -> etree._Element:
    """A bare ``SII:RESPUESTA`` document (the boleta REST API sends it without SOAP)."""
    root = parse_xml(data, what)
    if local_name(root) != "RESPUESTA":
        raise SiiProtocolError(f"the {what} answer is <{local_name(root)}>, not SII:RESPUESTA")
    return root


def field(respuesta_el: etree._Element, name: str) -> str | None:
    """A field of RESP_HDR, RESP_BODY or the root, stripped (None when absent or empty)."""
    for path in (f"{{*}}RESP_HDR/{{*}}{name}", f"{{*}}RESP_BODY/{{*}}{name}", f"{{*}}{name}"):
        found = respuesta_el.find(path)
        if found is not None:
            text = (found.text or "").strip()
            return text or None
    return None


# --------------------------------------------------------------------------- document/literal


def literal_request(method: str, params: Sequence[tuple[str, str]]) -> bytes:
    """A registroreclamodteservice request, as the RCL annex's SoapUI captures show it."""
    env = etree.Element(
        f"{{{SOAP_ENV}}}Envelope",
        nsmap={"soapenv": SOAP_ENV, "ws": RECLAMO_NS},
    )
    etree.SubElement(env, f"{{{SOAP_ENV}}}Header")
    body = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
    call = etree.SubElement(body, f"{{{RECLAMO_NS}}}{method}")
    for name, value in params:
        etree.SubElement(call, name).text = value
    return _XML_DECL + etree.tostring(env, encoding="UTF-8")


def literal_response(method: str, build: etree._Element | str) -> bytes:
    """Server side: ``<S:Envelope><S:Body><ns2:{method}Response>`` around ``<return>``."""
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"S": SOAP_ENV})
    body = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
    resp = etree.SubElement(body, f"{{{RECLAMO_NS}}}{method}Response", nsmap={"ns2": RECLAMO_NS})
    if isinstance(build, str):
        etree.SubElement(resp, "return").text = build
    else:
        resp.append(build)
    return _XML_DECL + etree.tostring(env, encoding="UTF-8")


def parse_literal_response(data: bytes, method: str) -> etree._Element:
    """Client side: the ``<return>`` element."""
    response = _body_child(parse_xml(data, f"{method} answer"))
    if local_name(response) != f"{method}Response":
        raise SiiProtocolError(f"expected <{method}Response>, got <{local_name(response)}>")
    ret = response.find("{*}return")
    if ret is None:
        raise SiiProtocolError(f"<{method}Response> has no <return>")
    return ret


def soap_fault(message: str) -> bytes:
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soapenv": SOAP_ENV})
    fault = etree.SubElement(etree.SubElement(env, f"{{{SOAP_ENV}}}Body"), f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(fault, "faultcode").text = "soapenv:Server"
    etree.SubElement(fault, "faultstring").text = message
    return _XML_DECL + etree.tostring(env, encoding="UTF-8")


# --------------------------------------------------------------------------- helpers


def parse_xml(data: bytes, what: str) -> etree._Element:
    """Any answer of the SII through the hardened parser; unreadable XML is a protocol error."""
    try:
        return parse_untrusted(data)
    except XmlParseError as exc:
        raise SiiProtocolError(f"the {what} is not readable XML: {exc.message}") from exc


def _body_child(env: etree._Element) -> etree._Element:
    if env.tag != f"{{{SOAP_ENV}}}Envelope":
        raise SiiProtocolError(f"expected a SOAP Envelope, got <{local_name(env)}>")
    body = env.find(f"{{{SOAP_ENV}}}Body")
    child = next((el for el in body if isinstance(el.tag, str)), None) if body is not None else None
    if child is None:
        raise SiiProtocolError("the SOAP Body is empty")
    if child.tag == f"{{{SOAP_ENV}}}Fault":
        raise SiiProtocolError(f"SOAP fault: {(child.findtext('faultstring') or '').strip()}")
    return child
