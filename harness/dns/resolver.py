"""Resolution over a World: what a validating recursive resolver would tell a stub.

Pure: a question in, a Resolution out; no packets (see ``responder``) and no sockets.

Names outside every zone get REFUSED, not NXDOMAIN or SERVFAIL: NXDOMAIN would be a false
statement about a name the scenario never described (and, if "secure", a proof of absence the
MTA may act on), SERVFAIL would read as a DNSSEC failure. REFUSED (RFC 1035 §4.1.1: refused "for
policy reasons") says "not in this world"; the query log marks it ``outside`` so a run can report
an incomplete world. glibc turns REFUSED into NO_RECOVERY, a hard lookup failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from dnslib import QTYPE, RCODE, RR

from .zone import State, World

MAX_CHAIN = 11  # CNAME links followed before giving up, as Unbound does


class Outcome(str, Enum):
    SECURE = "secure"
    INSECURE = "insecure"
    BOGUS = "bogus"
    TIMEOUT = "timeout"
    OUTSIDE = "outside"  # the name is in no zone of the world: REFUSED
    LOOP = "loop"  # a CNAME loop or an over-long chain: SERVFAIL


@dataclass(frozen=True)
class Resolution:
    rcode: int
    outcome: Outcome
    authentic: bool = False  # every link of the answer validated as secure: AD may be set
    answer: tuple[RR, ...] = ()
    authority: tuple[RR, ...] = ()
    in_world: bool = True  # the world answered (as opposed to REFUSED): set AA

    @property
    def silent(self) -> bool:
        return self.outcome is Outcome.TIMEOUT


_TIMEOUT = Resolution(RCODE.SERVFAIL, Outcome.TIMEOUT)
_BOGUS = Resolution(RCODE.SERVFAIL, Outcome.BOGUS, in_world=False)
_LOOP = Resolution(RCODE.SERVFAIL, Outcome.LOOP, in_world=False)
_REFUSED = Resolution(RCODE.REFUSED, Outcome.OUTSIDE, in_world=False)


def resolve(world: World, qname: str, qtype: int, *, cd: bool = False) -> Resolution:
    """Answer QNAME (canonical) / QTYPE the way a validating resolver reports it.

    A CNAME chain is followed inside the world (RFC 1034 §4.3.2 step 3a); the answer is
    authentic only if every link is (RFC 4035 §3.2.3), any bogus link makes the whole answer
    SERVFAIL unless CD is set (RFC 4035 §3.2.2), and a link that times out silences it. The
    RCODE is that of the last name in the chain (RFC 6604 §2.1).
    """
    answer: list[RR] = []
    states: list[State] = []
    seen: set[str] = set()
    name = qname
    for _ in range(MAX_CHAIN + 1):
        zone = world.zone_for(name)
        if zone is None:
            if not answer:
                return _REFUSED
            # The chain leaves the world: the stub gets the CNAMEs it has (RFC 1034 §3.6.2).
            return _finish(RCODE.NOERROR, states, answer, ())
        chase = zone.rrset(name, QTYPE.CNAME) if qtype not in (QTYPE.CNAME, QTYPE.ANY) else ()
        state = zone.state_of(name, QTYPE.CNAME if chase else qtype)
        states.append(state)
        if state is State.TIMEOUT:
            return _TIMEOUT
        if state is State.BOGUS and not cd:
            return _BOGUS
        if chase:
            answer.extend(chase)
            seen.add(name)
            target = zone.cnames.get(name)
            if target is None:  # a CNAME given as raw bytes: serve it, don't chase it
                return _finish(RCODE.NOERROR, states, answer, ())
            if target in seen:
                return _LOOP
            name = target
            continue
        records = zone.everything_at(name) if qtype == QTYPE.ANY else zone.rrset(name, qtype)
        if records:
            answer.extend(records)
            return _finish(RCODE.NOERROR, states, answer, zone.ns if zone.ns_in_authority else ())
        # NODATA if the name exists, empty non-terminals included (RFC 8020 §2); else NXDOMAIN.
        rcode = RCODE.NOERROR if zone.exists(name) else RCODE.NXDOMAIN
        return _finish(rcode, states, answer, (zone.soa,))
    return _LOOP


def _finish(rcode: int, states: list[State], answer: list[RR],
            authority: tuple[RR, ...]) -> Resolution:
    if all(s is State.SECURE for s in states):
        outcome = Outcome.SECURE
    elif any(s is State.BOGUS for s in states):  # only reached with CD set
        outcome = Outcome.BOGUS
    else:
        outcome = Outcome.INSECURE
    return Resolution(rcode, outcome, outcome is Outcome.SECURE, tuple(answer), authority)

