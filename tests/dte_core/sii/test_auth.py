"""Seed → signed seed → token, as AUT v1.9 describes it, against the simulator."""

from __future__ import annotations

import base64

import pytest
from lxml import etree

from dte_core.sii import soap
from dte_core.sii.client import DocumentKey, SiiClient
from dte_core.sii.codes import EstadoToken
from dte_core.sii.errors import SiiAuthError
from dte_core.sii.seed import signed_seed, verify_signed_seed
from dte_core.sii.simulator import SiiSimulator
from dte_core.testkit.pki import make_company_certificate
from dte_core.xmlsafe import DSIG_NS
from tests.dte_core.sii import envelopes
from tests.dte_core.sii.conftest import Clock

DS = f"{{{DSIG_NS}}}"


def test_signed_seed_has_the_manuals_shape() -> None:
    xml = signed_seed("000002360958", envelopes.certificate())
    assert xml.startswith(b'<?xml version="1.0"?>')
    root = etree.fromstring(xml)
    assert root.tag == "getToken" and root.findtext("item/Semilla") == "000002360958"
    reference = root.find(f"{DS}Signature/{DS}SignedInfo/{DS}Reference")
    assert reference is not None and reference.get("URI") == ""
    transforms = [t.get("Algorithm") for t in reference.iter(f"{DS}Transform")]
    assert transforms == ["http://www.w3.org/2000/09/xmldsig#enveloped-signature"]
    key_info = root.find(f"{DS}Signature/{DS}KeyInfo")
    assert key_info is not None
    assert key_info.find(f"{DS}KeyValue/{DS}RSAKeyValue/{DS}Modulus") is not None
    assert key_info.find(f"{DS}X509Data/{DS}X509Certificate") is not None
    check = verify_signed_seed(xml)
    assert check.estado is EstadoToken.OK and check.rut == envelopes.FIRMANTE


def test_altered_seed_or_swapped_key_is_refused() -> None:
    xml = signed_seed("000000000078", envelopes.certificate())
    assert verify_signed_seed(xml.replace(b"000000000078", b"000000000079")).estado is (
        EstadoToken.FIRMA_INVALIDA
    )
    other_key, _ = make_company_certificate(rut="22222222-2", key_size=2048)
    modulus = other_key.public_key().public_numbers().n
    root = etree.fromstring(xml)
    mod_el = root.find(f".//{DS}Modulus")
    assert mod_el is not None
    mod_el.text = base64.b64encode(modulus.to_bytes(256, "big")).decode()
    assert verify_signed_seed(etree.tostring(root)).estado is EstadoToken.LLAVE_NO_COINCIDE
    unsigned = b"<getToken><item><Semilla>1</Semilla></item></getToken>"
    assert verify_signed_seed(unsigned).estado is EstadoToken.SIN_SIGNATURE


def test_soap_wire_format_is_escaped_xml_inside_soap(sim: SiiSimulator, client: SiiClient) -> None:
    client.get_seed()
    method, path, headers = sim.requests[-1]
    assert (method, path) == ("POST", "/DTEWS/CrSeed.jws")
    assert headers["content-type"].startswith("text/xml")
    # replay the call by hand to see the raw answer: the RESPUESTA travels entity-encoded
    body = soap.rpc_request("https://maullin.sii.cl/DTEWS/CrSeed.jws", "getSeed", [])
    raw = client.transport.client.post(
        "http://maullin.sii.test/DTEWS/CrSeed.jws", content=body
    ).content
    assert b"&lt;SII:RESPUESTA" in raw and b"getSeedReturn" in raw
    assert b"<SEMILLA>" not in raw
    inner = soap.parse_rpc_response(raw, "getSeed")
    assert soap.field(inner, "ESTADO") == "00" and len(soap.field(inner, "SEMILLA") or "") == 12


def test_token_is_cached_until_shortly_before_expiry(
    sim: SiiSimulator, client: SiiClient, clock: Clock
) -> None:
    first = client.get_token()
    assert client.get_token() == first
    token_calls = [p for _, p, _ in sim.requests if p.endswith("GetTokenFromSeed.jws")]
    assert len(token_calls) == 1
    clock.advance(client.tokens.ttl - client.tokens.margin - 1)
    assert client.get_token() == first
    clock.advance(2)  # now inside the renewal margin
    second = client.get_token()
    assert second != first
    assert len([p for _, p, _ in sim.requests if p.endswith("GetTokenFromSeed.jws")]) == 2


def test_token_refused_by_the_sii_is_renewed_once(sim: SiiSimulator, client: SiiClient) -> None:
    old = client.get_token()
    sim.sii.expire_tokens()
    # any token-protected call notices the refusal (ESTADO 002) and renews the token
    key = DocumentKey(envelopes.EMISOR, envelopes.RECEPTOR, 33, 999, envelopes.FECHA, 1)
    assert client.estado_dte(key).estado.value == "FAU"
    assert client.get_token() != old


def test_stale_seed_is_refused_with_estado_08(
    sim: SiiSimulator, client: SiiClient, clock: Clock
) -> None:
    seed = client.get_seed()
    clock.advance(121)  # AUT: the seed times out after two minutes
    xml = signed_seed(seed, envelopes.certificate()).decode()
    estado, token, glosa = sim.sii.token_from_seed(xml.encode())
    assert (estado, token, glosa) == (EstadoToken.ERROR_RETORNO, None, "TIME-OUT DEL SEED")
    estado, _, glosa = sim.sii.token_from_seed(xml.encode())
    assert glosa == "NO Existe SEED"  # a seed is good for one token only


def test_client_reports_the_refusal(sim: SiiSimulator, client: SiiClient) -> None:
    # a seed the SII never issued: GetTokenFromSeed answers 08 "NO Existe SEED"
    sim.sii.new_seed = lambda: "000000000001"  # type: ignore[method-assign]
    with pytest.raises(SiiAuthError) as info:
        client.get_token()
    assert info.value.estado == "08" and "NO Existe SEED" in info.value.message
