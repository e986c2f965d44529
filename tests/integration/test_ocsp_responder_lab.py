"""The lab's OCSP responder as a standing service: 203.0.113.80:80, named in every lab certificate's
AIA, queried from inside the lab by a real client (`openssl ocsp -url …`), and the same state that
makes the staples of a scenario."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID

from harness.engine.ocsp_world import OCSP_URL, OCSPLab
from harness.engine.tls_world import issue_certificates
from harness.lab import addresses, netns
from harness.lab.lab import Lab
from harness.pki.ca import PKI

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]


def aia_ocsp(cert: x509.Certificate) -> list[str]:
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    return [d.access_location.value for d in aia if d.access_method == AuthorityInformationAccessOID.OCSP]


def test_openssl_ocsp_queries_the_lab_responder(tmp_path: Path) -> None:
    with Lab(tmp_path) as lab:
        pki = PKI("lab responder test")
        ocsp = OCSPLab.start(lab, pki)
        try:
            leaves = issue_certificates(pki, {"mx": {"names": ["mx.d.test"]}, "gone": {"names": ["gone.d.test"]}})
            mx, gone = leaves["mx"], leaves["gone"]
            assert aia_ocsp(mx.cert) == [OCSP_URL] == [f"http://{addresses.OCSP_V4}/"]
            ocsp.peer_staple(mx, {}, leaves, "t")  # a scenario's staple sets the responder's state
            ocsp.peer_staple(gone, {"status": "revoked", "reason": "cessation_of_operation"}, leaves, "t")
            d = lab.rundir / "ocsp-test"
            d.mkdir()
            (d / "issuer.pem").write_bytes(mx.issuer_cert.public_bytes(Encoding.PEM))
            (d / "root.pem").write_text(pki.root_pem)
            for name, leaf in leaves.items():
                (d / f"{name}.pem").write_bytes(leaf.cert.public_bytes(Encoding.PEM))
            proc = lab.run(["openssl", "ocsp", "-issuer", str(d / "issuer.pem"),
                            "-cert", str(d / "mx.pem"), "-cert", str(d / "gone.pem"),
                            "-url", aia_ocsp(mx.cert)[0], "-CAfile", str(d / "root.pem"),
                            "-verify_other", str(d / "issuer.pem"), "-timeout", "5"], timeout=30)
            out = (proc.stdout + proc.stderr).decode()
            assert proc.returncode == 0, out
            assert f"{d}/mx.pem: good" in out and f"{d}/gone.pem: revoked" in out, out
            assert "Reason: cessationOfOperation" in out and "Response verify OK" in out, out
            assert [(q.method, q.status) for q in ocsp.responder.log] == [("POST", 200)]
        finally:
            ocsp.stop()
    assert not netns.exists(lab.name)
