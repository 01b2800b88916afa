"""An independent check of issued envelopes: tools and code that share nothing with dte_core.

xmllint (libxml2's CLI) for the official XSD, xmlsec1 (the XML Security Library's CLI) for both
XMLDSig signatures, and TED/CAF signatures recomputed here with plain `cryptography`.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

SII = "{http://www.sii.cl/SiiDte}"


def xmllint_valid(xml: Path, xsd: Path) -> tuple[bool, str]:
    proc = subprocess.run(
        ["xmllint", "--noout", "--nonet", "--schema", str(xsd), str(xml)],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode == 0, proc.stderr


def xmlsec1_verify(xml: Path, cert_pem: Path, signature_index: int) -> tuple[bool, str]:
    """Verify the n-th (1-based) ds:Signature of the file with xmlsec1."""
    proc = subprocess.run(
        [
            "xmlsec1",
            "--verify",
            "--id-attr:ID",
            "Documento",
            "--id-attr:ID",
            "SetDTE",
            "--pubkey-cert-pem",
            str(cert_pem),
            "--node-xpath",
            f"(//*[local-name()='Signature'])[{signature_index}]",
            str(xml),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode == 0 and "OK" in proc.stderr + proc.stdout, proc.stderr


def _plain(el: etree._Element) -> bytes:
    """The SII's signed form: local names only, no whitespace between tags, ISO-8859-1."""
    clone = etree.fromstring(etree.tostring(el))
    for node in clone.iter():
        node.tag = etree.QName(node).localname
        if len(node) and node.text and not node.text.strip():
            node.text = None
        if node.tail and not node.tail.strip():
            node.tail = None
    etree.cleanup_namespaces(clone)
    return etree.tostring(clone, encoding="ISO-8859-1", xml_declaration=False)


def _rsa_from_mod_exp(m: str, e: str) -> rsa.RSAPublicKey:
    n = int.from_bytes(base64.b64decode(m), "big")
    exp = int.from_bytes(base64.b64decode(e), "big")
    return rsa.RSAPublicNumbers(exp, n).public_key()


def check_ted(documento: etree._Element, sii_public_pem: bytes) -> list[str]:
    """Recompute the CAF's FRMA and the TED's FRMT; compare DD with the document."""
    problems = []
    dd = documento.find(f"{SII}TED/{SII}DD")
    frmt = documento.findtext(f"{SII}TED/{SII}FRMT")
    caf = dd.find(f"{SII}CAF")
    da = caf.find(f"{SII}DA")
    sii_key = serialization.load_pem_public_key(sii_public_pem)
    try:
        sii_key.verify(
            base64.b64decode(caf.findtext(f"{SII}FRMA")),
            _plain(da),
            padding.PKCS1v15(),
            hashes.SHA1(),
        )
    except Exception as exc:
        problems.append(f"CAF FRMA: {exc!r}")
    caf_key = _rsa_from_mod_exp(
        da.findtext(f"{SII}RSAPK/{SII}M"), da.findtext(f"{SII}RSAPK/{SII}E")
    )
    try:
        caf_key.verify(base64.b64decode(frmt), _plain(dd), padding.PKCS1v15(), hashes.SHA1())
    except Exception as exc:
        problems.append(f"TED FRMT: {exc!r}")
    enc = documento.find(f"{SII}Encabezado")
    pairs = {
        "RE": enc.findtext(f"{SII}Emisor/{SII}RUTEmisor"),
        "TD": enc.findtext(f"{SII}IdDoc/{SII}TipoDTE"),
        "F": enc.findtext(f"{SII}IdDoc/{SII}Folio"),
        "FE": enc.findtext(f"{SII}IdDoc/{SII}FchEmis"),
        "RR": enc.findtext(f"{SII}Receptor/{SII}RUTRecep"),
        "MNT": enc.findtext(f"{SII}Totales/{SII}MntTotal"),
    }
    for tag, expected in pairs.items():
        if dd.findtext(f"{SII}{tag}") != expected:
            problems.append(f"DD/{tag} {dd.findtext(f'{SII}{tag}')!r} != {expected!r}")
    folio = int(pairs["F"])
    if not int(da.findtext(f"{SII}RNG/{SII}D")) <= folio <= int(da.findtext(f"{SII}RNG/{SII}H")):
        problems.append("folio outside the CAF range")
    return problems
