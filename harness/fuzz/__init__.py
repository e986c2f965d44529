"""Fuzz campaigns (issue #8): lanes of Hypothesis-generated input against an MTA, judged by
oracles, with findings shrunk and saved as replay files. See harness.fuzz.campaign."""
