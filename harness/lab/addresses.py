"""The lab's address plan.

Every lab is its own network namespace, so every lab uses the same plan; nothing here is ever
configured outside a lab namespace. All addresses come from the documentation ranges
(RFC 5737, RFC 3849).
"""

from __future__ import annotations

from dataclasses import dataclass, field

TARGET_V4 = "192.0.2.25"
TARGET_V6 = "2001:db8::25"
DNS_V4 = "192.0.2.53"
CLIENT_V4 = "192.0.2.10"
SUBMITTER_V4 = "192.0.2.9"  # may relay through the target (outbound scenarios by SMTP)
PROXY_LISTED_V4 = "192.0.2.11"
PROXY_UNLISTED_V4 = "192.0.2.12"
PEER_COUNT = 40
SINK_V4 = "203.0.113.25"
OCSP_V4 = "203.0.113.80"  # the lab's OCSP responder (HTTP, port 80), named in AIA

TARGET_HOSTNAME = "mta.target.test"
TARGET_DOMAIN = "target.test"


def peer_v4(n: int) -> str:
    """The IPv4 address of fake peer N (1-based)."""
    if not 1 <= n <= PEER_COUNT:
        raise ValueError(f"peer number {n} outside 1..{PEER_COUNT}")
    return f"198.51.100.{n}"


def peer_v6(n: int) -> str:
    if not 1 <= n <= PEER_COUNT:
        raise ValueError(f"peer number {n} outside 1..{PEER_COUNT}")
    return f"2001:db8:100::{n:x}"


@dataclass(frozen=True)
class AddressPlan:
    v4: tuple[str, ...] = field(
        default_factory=lambda: (
            TARGET_V4,
            DNS_V4,
            CLIENT_V4,
            SUBMITTER_V4,
            PROXY_LISTED_V4,
            PROXY_UNLISTED_V4,
            SINK_V4,
            OCSP_V4,
            *(peer_v4(n) for n in range(1, PEER_COUNT + 1)),
        )
    )
    v6: tuple[str, ...] = field(
        default_factory=lambda: (TARGET_V6, *(peer_v6(n) for n in range(1, PEER_COUNT + 1)))
    )


def is_lab_address(addr: str) -> bool:
    """True for addresses in the documentation ranges the lab uses."""
    import ipaddress

    ip = ipaddress.ip_address(addr.split("%")[0])
    nets = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
    return any(ip in ipaddress.ip_network(n) for n in nets)
