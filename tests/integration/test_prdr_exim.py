"""The PRDR scenarios against the real Exim 4.96 of Debian's exim4-daemon-heavy.

Every scenario's verdict is pinned. A verdict other than `pass` is a known deviation of this Exim,
with the evidence that shows it; if Exim changes (or a check does), this test says which.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.engine.catalogue import load_catalogue
from harness.report.model import ScenarioResult
from support.harness import SCENARIOS, scenario

EXPECTED: dict[str, tuple[str, dict[tuple[str, str, str], str]]] = {
    # scenario: (verdict, {(check, requirement, level): verdict} for the checks that do not pass)
    "prdr-server-ehlo-keyword": ("pass", {}),
    # Exim advertises PRDR and PIPELINING but never ENHANCEDSTATUSCODES (§4 requires both).
    "prdr-server-prerequisites": ("fail", {("ehlo_keyword_implies", "PRDR-02", "MUST"): "fail"}),
    "prdr-server-mail-param": ("pass", {}),
    # "MAIL FROM:<…> PRDR=1" → "250 OK, PRDR Requested": Exim ignores the value.
    "prdr-server-mail-param-value": ("fail", {("reply_is", "PRDR-03", "MUST"): "fail",
                                              ("reply_is", "PRDR-03", "MAY"): "non-strict"}),
    "prdr-server-line-length": ("pass", {}),
    "prdr-server-not-requested": ("pass", {}),
    # "250 PRDR R=<…> acceptance" carries no enhanced status code (a SHOULD).
    "prdr-server-block": ("non-strict", {("prdr_reply_esc", "PRDR-08", "SHOULD"): "non-strict"}),
    "prdr-server-insufficient-storage": ("pass", {}),
    "prdr-server-final-all-refused": ("pass", {}),
    # Both recipients get 451 after DATA, yet the final reply is "250 … accepted for some
    # recipients" (§4.5.3: a temporary condition for all recipients MUST get a 4xx final reply).
    "prdr-server-final-all-deferred": ("fail", {("final_reply_class", "PRDR-11", "MUST"): "fail"}),
    # One recipient: Exim answers with a single 250 (it uses PRDR only with two or more), so the
    # block checks have nothing to judge.
    "prdr-server-model-single-recipient": ("pass", {("prdr_intro_line", "PRDR-06", "MUST"): "skip",
                                                    ("prdr_per_recipient", "PRDR-07", "MUST"): "skip"}),
    "prdr-server-model-same-verdict": ("pass", {}),
    "prdr-server-bdat": ("pass", {}),
    "prdr-client-not-offered": ("pass", {}),
    "prdr-client-offered": ("pass", {}),
    "prdr-client-traditional-reply": ("pass", {}),
    "prdr-client-per-recipient": ("pass", {}),
    "prdr-client-final-temporary": ("pass", {}),
    "prdr-client-final-permanent": ("pass", {}),
    "prdr-client-dsn-codes": ("pass", {}),
    "prdr-client-success-dsn": ("pass", {}),
    # The peer closes after the first per-recipient line; Exim logs "=> r1@d.test … C="250 2.1.5
    # r1 ok"" and drops r1 from its queue without a final reply (§4.5.3: the client keeps
    # ownership until a positive final reply).
    "prdr-client-close-mid-block": ("fail", {("queued", "PRDR-20", "MUST"): "fail"}),
    "prdr-client-no-final-reply": ("pass", {}),
    "prdr-client-patience": ("pass", {}),
    "prdr-client-patience-slow": ("skip", {}),
    # One per-recipient line short: Exim takes "250 final" for r2 and the reply to its QUIT
    # ("221 bye") for the final reply, and delivers both.
    "prdr-client-malformed-too-few": ("fail", {("recipient_states", "PRDR-22", "MUST"): "fail"}),
    # One line too many: Exim takes the extra 250 for the final reply and delivers although the
    # real final reply was 451.
    "prdr-client-malformed-extra-line": ("fail", {("recipient_states", "PRDR-22", "MUST"): "fail"}),
    "prdr-client-malformed-intro-esc": ("pass", {}),
    "prdr-client-malformed-intro-multiline": ("pass", {}),
    "prdr-client-malformed-3xx": ("pass", {}),
    "prdr-client-pipelining": ("pass", {}),
}


def test_every_prdr_scenario_is_pinned() -> None:
    files = {p.stem for p in (SCENARIOS / "prdr").glob("*.yaml")}
    assert files == set(EXPECTED)


def test_every_prdr_requirement_has_a_scenario() -> None:
    covered = {r for sid in EXPECTED for r in scenario(sid).requirements}
    assert covered == {r.id for r in load_catalogue().by_feature("prdr")}


@pytest.mark.integration
@pytest.mark.parametrize("sid", sorted(EXPECTED))
def test_prdr_scenario_on_exim(sid: str, exim: Callable[..., ScenarioResult]) -> None:
    verdict, not_passing = EXPECTED[sid]
    res = exim(scenario(sid))
    detail = [(c.check, c.requirement, c.verdict, c.message) for c in res.checks]
    assert res.verdict == verdict, (res.reason, res.traceback, detail)
    got = {(c.check, c.requirement, c.level): c.verdict for c in res.checks if c.verdict != "pass"}
    if verdict != "skip":
        assert got == not_passing, detail
        assert res.evidence, "every run scenario shows its evidence"
