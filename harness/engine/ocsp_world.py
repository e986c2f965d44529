"""OCSP in the lab: the standing responder, the target's staple file, the peers' staples.

`OCSPLab` lives as long as the lab (a standing service): one `OCSPResponder` served over HTTP on
203.0.113.80:80 — the URL every lab certificate names in its AIA extension — which also makes
every DER file that is stapled in a scenario, so a scenario's staple and the responder's answer
for the same certificate agree.

Target knobs (see fixtures/targets/exim/exim.yaml):

    target:
      ocsp_staple: {status: revoked}   # a staple spec (harness/pki/ocsp.py) for the target's own
                                       # certificate; `for: other` staples another certificate's
      ocsp_must_staple: true           # the target's certificate carries TLS Feature
                                       # status_request (RFC 7633)

`target_files()` turns them into files for the config template (`files.ocsp_cert`,
`files.ocsp_key`, `files.ocsp_file`): the target then serves a certificate made for OCSP
scenarios (with the responder's URL in AIA), so its staple answers for the certificate it really
presents.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema

from ..lab import addresses
from ..lab.lab import Lab
from ..pki.ca import PKI, Leaf
from ..pki.ocsp import STAPLE_SCHEMA, OCSPError
from ..pki.responder import HTTPResponder, OCSPResponder

OCSP_URL = f"http://{addresses.OCSP_V4}/"
OTHER_TARGET_NAME = f"other.{addresses.TARGET_DOMAIN}"
KNOBS = ("ocsp_staple", "ocsp_must_staple")


class OCSPWorldError(ValueError):
    """OCSP data in a scenario that cannot be built."""


class OCSPLab:
    """The lab's responder, and the target's OCSP files."""

    def __init__(self, pki: PKI | None, responder: OCSPResponder, http: HTTPResponder | None) -> None:
        self.pki = pki
        self.responder = responder
        self.http = http
        self._targets: dict[str, Leaf] = {}
        self.target_leaf: Leaf | None = None  # the certificate the target presents now
        self.target_staple: bytes | None = None  # the DER file it was told to staple

    @classmethod
    def start(cls, lab: Lab, pki: PKI) -> OCSPLab:
        responder = OCSPResponder(root_key=pki.root_key)
        http = HTTPResponder(responder, addresses.OCSP_V4, 80, socket_factory=lab.socket)
        http.start()
        return cls(pki, responder, http)

    def stop(self) -> None:
        if self.http is not None:
            self.http.stop()

    @property
    def url(self) -> str:
        return OCSP_URL

    # -- the target's side ----------------------------------------------------------------------

    def _target(self, kind: str) -> Leaf:
        if kind not in self._targets:
            if self.pki is None:
                raise OCSPWorldError("no lab PKI to issue the target's certificate")
            name = OTHER_TARGET_NAME if kind == "other" else addresses.TARGET_HOSTNAME
            self._targets[kind] = self.pki.issue([name], must_staple=kind == "must_staple",
                                                 ocsp_url=OCSP_URL)
        return self._targets[kind]

    def target_files(self, knobs: Mapping[str, Any], workdir: Path) -> dict[str, Any]:
        """Files the config template needs for the OCSP knobs; {} when the scenario sets none."""
        self.target_leaf, self.target_staple = None, None
        if not any(k in knobs for k in KNOBS):
            return {}
        spec = knobs.get("ocsp_staple")
        if spec is not None and not isinstance(spec, Mapping):
            raise OCSPWorldError("target.ocsp_staple: a staple spec mapping (harness/pki/ocsp.py)")
        if spec is not None:
            problems = list(jsonschema.Draft202012Validator(STAPLE_SCHEMA).iter_errors(spec))
            if problems:
                raise OCSPWorldError(f"target.ocsp_staple: {problems[0].message}")
            if spec.get("for") not in (None, "other"):
                raise OCSPWorldError("target.ocsp_staple.for: only 'other' (another certificate "
                                     "of the same CA) for the target")
        leaf = self._target("must_staple" if knobs.get("ocsp_must_staple") else "plain")
        folder = Path(workdir) / "ocsp"
        files = leaf.write(folder, "target-ocsp")
        out: dict[str, Any] = {"ocsp_cert": files.cert, "ocsp_key": files.key, "ocsp_file": None}
        self.target_leaf = leaf
        if spec is not None:
            about = self._target("other") if spec.get("for") == "other" else None
            clean = {k: v for k, v in spec.items() if k != "for"}
            try:
                der = self.responder.staple(leaf, clean, about=about)
            except OCSPError as exc:
                raise OCSPWorldError(f"target.ocsp_staple: {exc}") from None
            path = folder / "target-staple.der"
            path.write_bytes(der)
            path.chmod(0o644)
            out["ocsp_file"] = path
            self.target_staple = der
        return out

    # -- the peers' side ------------------------------------------------------------------------

    def peer_staple(self, leaf: Leaf, spec: Any, leaves: Mapping[str, Leaf], path: str) -> bytes | None:
        """The DER a fake MX presenting LEAF staples for SPEC (None or "none": no staple)."""
        if spec is None or spec == "none":
            return None
        if not isinstance(spec, Mapping):
            raise OCSPWorldError(f"{path}: a staple spec mapping or 'none'")
        about = None
        if spec.get("for"):
            if spec["for"] not in leaves:
                raise OCSPWorldError(f"{path}.for: no certificate {spec['for']!r} in world.pki")
            about = leaves[spec["for"]]
        clean = {k: v for k, v in spec.items() if k != "for"}
        try:
            return self.responder.staple(leaf, clean, about=about)
        except OCSPError as exc:
            raise OCSPWorldError(f"{path}: {exc}") from None


def standalone_staple(leaf: Leaf, spec: Any, leaves: Mapping[str, Leaf], path: str) -> bytes | None:
    """A staple without a running lab responder (unit tests, tools)."""
    return OCSPLab(None, OCSPResponder(), None).peer_staple(leaf, spec, leaves, path)
