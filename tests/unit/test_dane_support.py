"""What the DANE scenarios stand on: the STARTTLS session step, private CAs for DANE-TA, the full
chain file, and the Exim template's DANE knobs (both the built-in spec and exim-nodane)."""

from __future__ import annotations

import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from cryptography import x509

from harness.engine.actions.session import SessionRunner, validate_steps
from harness.engine.tls_world import issue_certificates, peer_tls, tlsa_value
from harness.pki.ca import PKI
from harness.pki.tlsa import tlsa_record_value
from harness.smtp.peer import FakeMX, script_from_data
from harness.targets.managed import ManagedTarget
from harness.targets.spec import resolve

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios" / "dane"


# --- the starttls step --------------------------------------------------------------------------

@pytest.mark.parametrize("arg", [None, {}, {"sni": None}, {"sni": "mta.target.test"}])
def test_starttls_step_validates(arg: Any) -> None:
    assert validate_steps([{"ehlo": "c.test"}, {"starttls": arg}, "quit"]) is None
    assert validate_steps(["starttls"]) is None


def test_starttls_step_rejects_unknown_keys() -> None:
    problem = validate_steps([{"starttls": {"server_name": "x"}}])
    assert problem is not None and problem[0][:2] == [0, "starttls"]


def test_starttls_step_runs_the_rest_of_the_session_over_tls() -> None:
    pki = PKI("step test")
    leaf = pki.issue(["mx.d.test"])
    tls = peer_tls({"cert": "mx", "chain": "full"}, {"mx": leaf}, "test")
    with FakeMX("mx", "127.0.0.1", 0, script_from_data({"ehlo": ["STARTTLS", "PIPELINING"]}),
                socket_factory=socket.socket, tls=tls) as mx:
        record = SessionRunner(lambda: socket.create_connection(("127.0.0.1", mx.port), timeout=5.0),
                               lambda role, n: None, reply_timeout=5.0).run(
            [{"ehlo": "c.test"}, {"starttls": {"sni": "mx.d.test"}}, {"ehlo": "c.test"}, "noop", "quit"])
        mx.wait_idle(5.0)
    assert record.errors == []
    assert record.tls is not None and record.tls["handshake_ok"] and record.tls["reply"] == 220
    assert record.tls["sni_sent"] == "mx.d.test" and record.tls["version"] == "TLSv1.3"
    assert [c["dns_names"] for c in record.tls["chain"]] == [["mx.d.test"], [], []]
    assert record.ehlo is not None and "STARTTLS" not in record.ehlo.keywords  # the EHLO over TLS
    assert [s.kind for s in record.steps] == ["banner", "ehlo", "starttls", "ehlo", "noop", "quit"]
    assert record.steps[-1].replies[0].code == 221
    [seen] = mx.sessions_seen
    assert seen.tls is not None and seen.tls["sni"] == "mx.d.test"
    assert [c.verb for c in seen.commands] == ["EHLO", "STARTTLS", "EHLO", "NOOP", "QUIT"]
    notes = [e.data.decode() for e in record.transcript.events if e.dir == "note"]
    assert any(n.startswith("TLS established: TLSv1.3") for n in notes)


def test_starttls_step_records_a_failed_handshake() -> None:
    pki = PKI("step test")
    tls = peer_tls({"cert": "mx"}, {"mx": pki.issue(["mx.d.test"])}, "test")
    script = script_from_data({"ehlo": ["STARTTLS"], "starttls": {"reply": "220 go", "close": True}})
    with FakeMX("mx", "127.0.0.1", 0, script, socket_factory=socket.socket, tls=tls) as mx:
        record = SessionRunner(lambda: socket.create_connection(("127.0.0.1", mx.port), timeout=5.0),
                               lambda role, n: None, reply_timeout=5.0).run(
            [{"ehlo": "c.test"}, "starttls", "quit"])
    assert record.tls is not None and not record.tls["handshake_ok"] and record.tls["error"]
    assert record.errors and record.errors[0].startswith("starttls: TLS handshake failed")
    assert [s.kind for s in record.steps] == ["banner", "ehlo", "starttls"]  # the session stopped


# --- private CAs and the full chain file -----------------------------------------------------------

def test_a_private_ca_is_not_the_lab_ca() -> None:
    lab = PKI("lab")
    leaves = issue_certificates(lab, {"lab": {"names": ["mx.d.test"]},
                                      "priv": {"names": ["mx.d.test"], "ca": "private"},
                                      "priv2": {"names": ["mx2.d.test"], "ca": "private"},
                                      "own": {"names": ["mx.d.test"], "ca": "private", "issuer": "self"}})
    assert leaves["lab"].root == lab.root_cert
    assert leaves["priv"].root != lab.root_cert and len(leaves["priv"].intermediates) == 1
    assert leaves["priv"].root == leaves["priv2"].root  # one private CA per scenario
    assert leaves["own"].self_signed
    ref = {"cert": "priv", "usage": 2, "selector": 0, "mtype": 1}
    assert tlsa_value(ref, leaves, "p") == tlsa_record_value(2, 0, 1, leaves["priv"].root)


def test_leaf_files_include_the_full_chain(tmp_path: Path) -> None:
    leaf = PKI("lab").issue(["mta.target.test"])
    files = leaf.write(tmp_path, "target")
    assert files.full_chain == tmp_path / "target-full.crt"
    chain = x509.load_pem_x509_certificates(files.full_chain.read_bytes())
    assert chain == [leaf.cert, *leaf.intermediates, leaf.root]
    assert len(x509.load_pem_x509_certificates(files.cert.read_bytes())) == 2


# --- the Exim template's DANE knobs ----------------------------------------------------------------

def render(target: str, **knobs: Any) -> list[str]:
    driver = ManagedTarget(resolve(target), None, Path("/nonexistent"))  # type: ignore[arg-type]
    driver.tls_files = SimpleNamespace(cert="/tls/target.crt", key="/tls/target.key", ca="/tls/target-ca.crt",
                                       full_chain="/tls/target-full.crt")
    return [line.strip() for line in driver.render(knobs).splitlines()]


@pytest.mark.parametrize(("knob", "try_dane", "require_dane"), [
    ({}, "*", ""),
    ({"dane": "opportunistic"}, "*", ""),
    ({"dane": "required"}, "*", "! mx.sender.test : *"),
    ({"dane": "off"}, "", ""),
])
def test_exim_dane_policy(knob: dict[str, str], try_dane: str, require_dane: str) -> None:
    lines = render("exim", **knob)
    assert f"hosts_try_dane = {try_dane}".strip() in lines
    assert f"hosts_require_dane = {require_dane}".strip() in lines


@pytest.mark.parametrize("policy", [None, "opportunistic", "required"])
def test_exim_nodane_switches_dane_off_whatever_the_scenario_asks(policy: str | None) -> None:
    lines = render("exim-nodane", **({"dane": policy} if policy else {}))
    assert "hosts_try_dane =" in lines and "hosts_require_dane =" in lines
    spec, nodane = resolve("exim"), resolve("exim-nodane")
    assert nodane.features == spec.features
    # exim-nodane.yaml copies exim.yaml below `config:`; it must understand every knob the DANE
    # scenarios set, or they would be skipped there instead of failing.
    used = {k for p in SCENARIOS.glob("dane-*.yaml") for k in (yaml.safe_load(p.read_text()).get("target") or {})}
    assert used and used <= set(nodane.knobs) and used <= set(spec.knobs)


def test_exim_dane_knobs_for_port_literals_and_the_server_chain() -> None:
    default = render("exim")
    assert "allow_domain_literals = false" in default and "driver = ipliteral" not in default
    remote_smtp = default[default.index("remote_smtp:"):]
    assert not any(line.startswith("port =") for line in remote_smtp[:remote_smtp.index("")])
    assert "tls_certificate = /tls/target.crt" in default
    lines = render("exim", client_port=2525, domain_literals=True, allow_mx_to_ip=True, tls_chain="full")
    assert {"port = 2525", "allow_domain_literals = true", "allow_mx_to_ip = true", "driver = ipliteral",
            "tls_certificate = /tls/target-full.crt"} <= set(lines)
    lines = render("exim", tls_require_sni=True)
    assert "tls_certificate = ${if eq{$tls_in_sni}{mta.target.test}{/tls/target.crt}fail}" in lines
