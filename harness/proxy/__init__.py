"""PROXY protocol v1/v2: a strict sans-I/O codec (``codec``), scapy layers for building and
mutating v2 headers field by field (``layers``), Hypothesis strategies (``strategies``) and a
client that sends a header exactly as a scenario says (``client``)."""
