"""The lab's PKI: CAs and leaf certificates (trustme + cryptography) and TLSA digests."""

from .ca import PKI, Leaf, LeafFiles
from .tlsa import dane_ee, dane_ta, tlsa_association, tlsa_record_value

__all__ = ["PKI", "Leaf", "LeafFiles", "dane_ee", "dane_ta", "tlsa_association",
           "tlsa_record_value"]
