"""mtaconform: a conformance test harness and fuzzer for mail transfer agents."""

__version__ = "0.1.0"
