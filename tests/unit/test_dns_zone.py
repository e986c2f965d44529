"""Zone data → World: accepted forms, exact RDATA bytes, and ZoneDataError paths."""

from __future__ import annotations

import pytest
from dnslib import QTYPE, DNSBuffer

from harness.dns.zone import DEFAULT_TTL, State, World, ZoneDataError


def world(*records: dict, **zone: object) -> World:
    return World.from_data({"zones": [{"name": "d.test", **zone, "records": list(records)}]})


def rdata_bytes(w: World, name: str, rtype: str) -> list[bytes]:
    out = []
    for rr in w.zone_for(name).rrset(name, getattr(QTYPE, rtype)):
        buf = DNSBuffer()
        rr.rdata.pack(buf)
        out.append(bytes(buf.data))
    return out


# -- accepted forms ---------------------------------------------------------------------------

def test_basic_zone_and_defaults() -> None:
    w = world({"name": "d.test", "type": "MX", "value": "10 mx.d.test"},
              {"name": "MX.D.Test.", "type": "a", "value": "198.51.100.1"})
    zone = w.zone_for("mx.d.test")
    assert zone.name == "d.test" and zone.state is State.SECURE
    assert rdata_bytes(w, "mx.d.test", "A") == [bytes([198, 51, 100, 1])]
    mx = zone.rrset("d.test", QTYPE.MX)[0]
    assert (mx.rdata.preference, str(mx.rdata.label), mx.ttl) == (10, "mx.d.test.", DEFAULT_TTL)
    # Synthesised SOA and NS at the apex.
    assert str(zone.soa.rdata.mname) == "ns.d.test."
    assert [str(rr.rdata.label) for rr in zone.ns] == ["ns.d.test."]
    assert zone.rrset("d.test", QTYPE.SOA) and zone.rrset("d.test", QTYPE.NS)


def test_every_value_form() -> None:
    w = world(
        {"name": "@", "type": "MX", "value": {"preference": 5, "exchange": "mx.d.test."}},
        {"name": "null.d.test", "type": "MX", "value": "0 ."},
        {"name": "mx.d.test", "type": "AAAA", "value": "2001:db8::1"},
        {"name": "alias.d.test", "type": "CNAME", "value": "mx.d.test"},
        {"name": "1.d.test", "type": "PTR", "value": "mx.d.test"},
        {"name": "sub.d.test", "type": "NS", "value": "ns.sub.d.test"},
        {"name": "d.test", "type": "TXT", "value": "v=spf1 -all"},
        {"name": "t.d.test", "type": "TXT", "value": ["a", "b"]},
        {"name": "long.d.test", "type": "TXT", "value": "x" * 300},
        {"name": "d.test", "type": "SOA", "value": {"mname": "m.d.test", "rname": "h.d.test",
                                                    "minimum": 30}},
        ttl=60,
    )
    zone = w.zone_for("d.test")
    assert zone.rrset("d.test", QTYPE.MX)[0].rdata.preference == 5
    assert str(zone.rrset("null.d.test", QTYPE.MX)[0].rdata.label) == "."
    assert rdata_bytes(w, "mx.d.test", "AAAA") == [bytes.fromhex("20010db8" + "00" * 11 + "01")]
    assert zone.cnames == {"alias.d.test": "mx.d.test"}
    assert rdata_bytes(w, "t.d.test", "TXT") == [b"\x01a\x01b"]
    assert rdata_bytes(w, "long.d.test", "TXT") == [b"\xff" + b"x" * 255 + b"\x2d" + b"x" * 45]
    soa = zone.rrset("d.test", QTYPE.SOA)[0]
    assert soa.rdata.times == (1, 3600, 600, 86400, 30) and soa.ttl == 60
    assert zone.soa.ttl == 30  # RFC 2308 §3: min(SOA TTL, MINIMUM)
    assert zone.rrset("d.test", QTYPE.MX)[0].ttl == 60


def test_tlsa_bytes_are_what_the_data_says() -> None:
    w = world(
        {"name": "_25._tcp.mx.d.test", "type": "TLSA", "value": "3 1 1 0A0b 0c"},
        {"name": "_25._tcp.bad.d.test", "type": "TLSA",
         "value": {"usage": 7, "selector": 1, "mtype": 1, "data_hex": "abcd"}},
        {"name": "_25._tcp.empty.d.test", "type": "TLSA",
         "value": {"usage": 3, "selector": 255, "mtype": 9}},
        {"name": "_25._tcp.raw.d.test", "type": "TLSA", "rdata_hex": "0301"},
        {"name": "odd.d.test", "type": "TYPE65400", "rdata_hex": "c0ffee"},
    )
    assert rdata_bytes(w, "_25._tcp.mx.d.test", "TLSA") == [bytes.fromhex("0301010a0b0c")]
    assert rdata_bytes(w, "_25._tcp.bad.d.test", "TLSA") == [bytes.fromhex("070101abcd")]
    assert rdata_bytes(w, "_25._tcp.empty.d.test", "TLSA") == [bytes.fromhex("03ff09")]
    assert rdata_bytes(w, "_25._tcp.raw.d.test", "TLSA") == [bytes.fromhex("0301")]
    raw = w.zone_for("odd.d.test").rrset("odd.d.test", 65400)
    assert raw[0].rdata.data == bytes.fromhex("c0ffee")


def test_states_and_state_only_entries() -> None:
    w = world({"name": "mx.d.test", "type": "A", "value": "198.51.100.1", "state": "insecure"},
              {"name": "mx.d.test", "type": "A", "value": "198.51.100.2"},
              {"name": "mx.d.test", "type": "AAAA", "state": "timeout"},
              {"name": "ghost.d.test", "type": "A", "state": "bogus"},
              state="secure")
    zone = w.zone_for("d.test")
    assert zone.state_of("mx.d.test", QTYPE.A) is State.INSECURE
    assert zone.state_of("mx.d.test", QTYPE.AAAA) is State.TIMEOUT
    assert zone.state_of("mx.d.test", QTYPE.MX) is State.SECURE
    assert zone.rrset("mx.d.test", QTYPE.AAAA) == ()
    assert not zone.exists("ghost.d.test")  # a state-only entry creates no name
    assert len(zone.rrset("mx.d.test", QTYPE.A)) == 2


def test_empty_non_terminals_exist() -> None:
    w = world({"name": "_25._tcp.mx.d.test", "type": "TLSA", "value": "3 1 1 ab"})
    zone = w.zone_for("d.test")
    assert zone.exists("_tcp.mx.d.test") and zone.exists("mx.d.test")
    assert not zone.exists("other.d.test")


def test_builtin_zones_and_reverse_shorthand() -> None:
    w = World.from_data({"reverse": [{"address": "198.51.100.1", "ptr": "mx.d.test"},
                                     {"address": "2001:db8::25", "state": "timeout"}]})
    root = w.zone_for("")
    assert root.name == "" and root.state is State.SECURE
    assert w.zone_for("d.test") is None  # the built-in root answers only for "."
    rev = w.zone_for("1.100.51.198.in-addr.arpa")
    assert rev.name == "in-addr.arpa" and rev.state is State.INSECURE
    assert str(rev.rrset("1.100.51.198.in-addr.arpa", QTYPE.PTR)[0].rdata.label) == "mx.d.test."
    v6 = "5.2.0.0." + "0." * 20 + "8.b.d.0.1.0.0.2.ip6.arpa"  # 2001:db8::25
    assert w.zone_for(v6).state_of(v6, QTYPE.PTR) is State.TIMEOUT


def test_declared_reverse_zone_replaces_and_narrows_builtin() -> None:
    w = World.from_data({"zones": [{"name": "100.51.198.in-addr.arpa", "state": "secure"}],
                         "reverse": [{"address": "198.51.100.7", "ptr": "p.d.test"}]})
    assert w.zone_for("7.100.51.198.in-addr.arpa").name == "100.51.198.in-addr.arpa"
    assert w.zone_for("1.2.0.192.in-addr.arpa").name == "in-addr.arpa"
    w2 = World.from_data({"zones": [{"name": "arpa", "state": "bogus"}]})
    assert w2.zone_for("1.2.0.192.in-addr.arpa").name == "arpa"


def test_empty_and_none_worlds() -> None:
    assert set(World.from_data(None).zones) == {"", "in-addr.arpa", "ip6.arpa"}
    assert set(World.empty().zones) == set(World.from_data({"zones": []}).zones)


# -- errors, with paths -----------------------------------------------------------------------

BAD = [
    ({"zones": {}}, "zones", "must be a list"),
    ({"zone": []}, "zone", "unknown key"),
    ({"zones": [{"state": "secure"}]}, "zones[0]", "needs a name"),
    ({"zones": [{"name": "d..test"}]}, "zones[0].name", "empty label"),
    ({"zones": [{"name": "d.test", "state": "unsigned"}]}, "zones[0].state", "unknown state"),
    ({"zones": [{"name": "d.test", "ttl": -1}]}, "zones[0].ttl", "ttl"),
    ({"zones": [{"name": "d.test"}, {"name": "D.test."}]}, "zones[1].name", "declared twice"),
    ({"zones": [{"name": "d.test", "records": [{"name": "x.e.test", "type": "A",
                                                "value": "192.0.2.1"}]}]},
     "zones[0].records[0].name", "not in zone"),
    ({"zones": [{"name": "d.test", "records": [{}, {"name": "d.test"}]}]},
     "zones[0].records[0]", "needs a name"),
    ({"zones": [{"name": "d.test", "records": [{"name": "d.test", "type": "MX",
                                                "value": "10 mx.d.test"},
                                               {"name": "mx.d.test", "type": "A",
                                                "value": "198.51.100.300"}]}]},
     "zones[0].records[1].value", "IPv4"),
    ({"zones": [{"name": "d.test", "records": [{"name": "d.test", "type": "MXX",
                                                "value": "x"}]}]},
     "zones[0].records[0].type", "unknown record type"),
    ({"zones": [{"name": "d.test", "records": [{"name": "t.d.test", "type": "TLSA",
                                                "value": {"usage": 256, "selector": 1,
                                                          "mtype": 1, "data_hex": "ab"}}]}]},
     "zones[0].records[0].value.usage", "0..255"),
    ({"zones": [{"name": "d.test", "records": [{"name": "t.d.test", "type": "TLSA",
                                                "value": {"usage": 3, "selector": 1,
                                                          "mtype": 1, "data_hex": "abc"}}]}]},
     "zones[0].records[0].value.data_hex", "hex"),
    ({"zones": [{"name": "d.test", "records": [{"name": "t.d.test", "type": "TLSA",
                                                "value": {"usage": 3, "selector": 1,
                                                          "matching": 1}}]}]},
     "zones[0].records[0].value.matching", "unknown field"),
    ({"zones": [{"name": "d.test", "records": [{"name": "d.test", "type": "MX",
                                                "value": {"preference": 70000,
                                                          "exchange": "mx.d.test"}}]}]},
     "zones[0].records[0].value.preference", "0..65535"),
    ({"zones": [{"name": "d.test", "records": [{"name": "t.d.test", "type": "TXT",
                                                "value": ["ok", "y" * 256]}]}]},
     "zones[0].records[0].value[1]", "255"),
    ({"zones": [{"name": "d.test", "records": [{"name": "t.d.test", "type": "A"}]}]},
     "zones[0].records[0]", "needs a value"),
    ({"zones": [{"name": "d.test", "records": [{"name": "t.d.test", "type": "A",
                                                "value": "192.0.2.1", "rdata_hex": "00"}]}]},
     "zones[0].records[0]", "not both"),
    ({"zones": [{"name": "d.test", "records": [{"name": "t.d.test", "type": "TYPE99",
                                                "value": "x"}]}]},
     "zones[0].records[0].value", "rdata_hex"),
    ({"zones": [{"name": "d.test", "records": [{"name": "*.d.test", "type": "A",
                                                "value": "192.0.2.1"}]}]},
     "zones[0].records[0].name", "wildcard"),
    ({"zones": [{"name": "d.test", "records": [{"name": "a.d.test", "type": "CNAME",
                                                "value": "b.d.test"},
                                               {"name": "a.d.test", "type": "A",
                                                "value": "192.0.2.1"}]}]},
     "zones[0].records[1]", "CNAME"),
    ({"zones": [{"name": "d.test", "records": [{"name": "a.d.test", "type": "CNAME",
                                                "value": "b.d.test"},
                                               {"name": "a.d.test", "type": "CNAME",
                                                "value": "c.d.test"}]}]},
     "zones[0].records[1]", "at most one CNAME"),
    ({"zones": [{"name": "d.test", "records": [{"name": "d.test", "type": "CNAME",
                                                "value": "b.d.test"}]}]},
     "zones[0].records[0].name", "apex"),
    ({"zones": [{"name": "d.test", "records": [{"name": "a.d.test", "type": "A",
                                                "value": "192.0.2.1", "state": "secure"},
                                               {"name": "a.d.test", "type": "A",
                                                "value": "192.0.2.2", "state": "bogus"}]}]},
     "zones[0].records[1].state", "conflicts"),
    ({"zones": [{"name": "d.test", "records": [{"name": "a.d.test", "type": "A",
                                                "value": "192.0.2.1"},
                                               {"name": "a.d.test", "type": "A",
                                                "value": "192.0.2.2", "ttl": 60}]}]},
     "zones[0].records[1].ttl", "RFC 2181"),
    ({"zones": [{"name": "d.test", "records": [{"name": "a.d.test", "type": "SOA",
                                                "value": "m.d.test h.d.test 1 2 3 4 5"}]}]},
     "zones[0].records[0].name", "apex"),
    ({"zones": [{"name": "d.test", "records": [{"name": "a.d.test", "type": "OPT",
                                                "rdata_hex": ""}]}]},
     "zones[0].records[0].type", "not a record type"),
    ({"zones": [{"name": "d.test", "records": [{"name": "x.sub.d.test", "type": "A",
                                                "value": "192.0.2.1"}]},
                {"name": "sub.d.test"}]},
     "zones[0].records[0].name", "more specific zone sub.d.test."),
    ({"zones": [{"name": "d.test", "records": [{"name": "a.d.test", "type": "A",
                                                "value": "192.0.2.1", "colour": "red"}]}]},
     "zones[0].records[0].colour", "unknown key"),
    ({"reverse": [{"address": "198.51.100.999", "ptr": "x.d.test"}]},
     "reverse[0].address", "not an IP address"),
    ({"reverse": [{"address": "198.51.100.9", "ptr": "x y"}]}, "reverse[0].ptr", "white space"),
    ({"reverse": [{"address": "198.51.100.9"}]}, "reverse[0]", "needs a ptr"),
    ([], "", "mapping"),
]


@pytest.mark.parametrize(("data", "path", "fragment"), BAD)
def test_bad_data_points_at_the_path(data: object, path: str, fragment: str) -> None:
    with pytest.raises(ZoneDataError) as info:
        World.from_data(data)
    assert info.value.path == path
    assert fragment in info.value.message
    assert str(info.value).startswith(f"{path}: " if path else info.value.message)


def test_path_prefix_for_the_scenario_loader() -> None:
    with pytest.raises(ZoneDataError) as info:
        World.from_data({"zones": [{"name": "d.test", "state": "nope"}]}, path="world.dns")
    assert info.value.path == "world.dns.zones[0].state"


def test_hand_written_yaml() -> None:
    yaml = pytest.importorskip("yaml")
    data = yaml.safe_load("""
zones:
  - name: d.test
    state: secure
    records:
      - {name: d.test, type: MX, value: "10 mx.d.test"}
      - {name: mx.d.test, type: A, value: 198.51.100.1}
      - {name: mx.d.test, type: AAAA, value: "2001:db8::1"}
      - {name: _25._tcp.mx.d.test, type: TLSA, value: "3 1 1 0a1b2c"}
      - {name: mx2.d.test, type: A, value: 198.51.100.2, state: insecure}
      - {name: slow.d.test, type: A, value: 198.51.100.3, state: timeout}
      - {name: bad.d.test, type: TLSA, value: {usage: 7, selector: 1, mtype: 1, data_hex: abcd}}
      - name: txt.d.test
        type: TXT
        value: [one, two]
reverse:
  - {address: 198.51.100.1, ptr: mx.d.test}
""")
    w = World.from_data(data)
    zone = w.zone_for("d.test")
    assert rdata_bytes(w, "bad.d.test", "TLSA") == [bytes.fromhex("070101abcd")]
    assert rdata_bytes(w, "_25._tcp.mx.d.test", "TLSA") == [bytes.fromhex("0301010a1b2c")]
    assert zone.state_of("slow.d.test", QTYPE.A) is State.TIMEOUT
    assert w.zone_for("1.100.51.198.in-addr.arpa").rrset("1.100.51.198.in-addr.arpa", QTYPE.PTR)
