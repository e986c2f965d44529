"""TLSA association data checked against independent computations (ssl, pyOpenSSL, hashlib)."""

from __future__ import annotations

import hashlib
import ssl

import pytest
from dnslib import DNSRecord, RR
from OpenSSL import crypto

from harness.dns.zone import World
from harness.pki import PKI, dane_ee, dane_ta, tlsa_association, tlsa_record_value
from harness.pki.tlsa import load


@pytest.fixture(scope="module")
def pki() -> PKI:
    return PKI("tlsa-test")


@pytest.fixture(scope="module", params=["ec", "rsa"])
def leaf(pki: PKI, request):
    return pki.issue(["mx.d.test"], key_type=request.param)


def independent(cert_pem: str, selector: int) -> bytes:
    if selector == 0:
        return ssl.PEM_cert_to_DER_cert(cert_pem)
    x = crypto.load_certificate(crypto.FILETYPE_PEM, cert_pem.encode())
    return crypto.dump_publickey(crypto.FILETYPE_ASN1, x.get_pubkey())


@pytest.mark.parametrize("selector", [0, 1])
@pytest.mark.parametrize(("mtype", "digest"), [(0, lambda b: b),
                                               (1, lambda b: hashlib.sha256(b).digest()),
                                               (2, lambda b: hashlib.sha512(b).digest())])
def test_association_matches_independent_computation(leaf, selector, mtype, digest) -> None:
    expected = digest(independent(leaf.cert_pem, selector))
    assert tlsa_association(leaf.cert, selector, mtype) == expected
    assert tlsa_association(leaf.cert_pem, selector, mtype) == expected  # PEM input too
    assert len(expected) == {0: len(expected), 1: 32, 2: 64}[mtype]


def test_record_values_and_usage_helpers(pki: PKI, leaf) -> None:
    spki = independent(leaf.cert_pem, 1)
    assert dane_ee(leaf.cert) == f"3 1 1 {hashlib.sha256(spki).hexdigest()}"
    root_der = ssl.PEM_cert_to_DER_cert(pki.root_pem)
    assert dane_ta(pki.root_cert) == f"2 0 1 {hashlib.sha256(root_der).hexdigest()}"
    assert dane_ta(pki.intermediate_certs[0], 1, 2).startswith("2 1 2 ")
    assert tlsa_record_value(7, 1, 1, leaf.cert).startswith("7 1 1 ")  # unknown usage allowed


def test_rejects_what_it_cannot_compute(leaf) -> None:
    with pytest.raises(ValueError):
        tlsa_association(leaf.cert, 2, 1)
    with pytest.raises(ValueError):
        tlsa_association(leaf.cert, 1, 3)
    with pytest.raises(ValueError):
        tlsa_record_value(256, 1, 1, leaf.cert)


def test_der_input(leaf) -> None:
    der = ssl.PEM_cert_to_DER_cert(leaf.cert_pem)
    assert load(der) == leaf.cert


def test_record_value_round_trips_through_the_zone(leaf) -> None:
    value = dane_ee(leaf.cert)
    world = World.from_data({"zones": [{"name": "d.test", "records": [
        {"name": "_25._tcp.mx.d.test", "type": "TLSA", "value": value}]}]})
    rr: RR = world.zone_for("d.test").rrset("_25._tcp.mx.d.test", 52)[0]
    wire = DNSRecord(rr=[rr]).pack()
    parsed = DNSRecord.parse(wire).rr[0].rdata
    assert (parsed.cert_usage, parsed.selector, parsed.matching_type) == (3, 1, 1)
    assert parsed.cert_data == tlsa_association(leaf.cert, 1, 1)
