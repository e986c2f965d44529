"""Delivery status notifications (RFC 3461, RFC 3464, RFC 6522, RFC 6533), sans I/O.

- `report`: read a DSN (the multipart/report, its field groups, the returned content); `DSNError`
  is the one error type for bytes that are not a readable DSN.
- `validate`: judge it against the RFCs; each violation names its field, rule and section.
- `xtext`, `params`: the xtext encoding and the DSN parameters of MAIL and RCPT (RFC 3461 §4).
- `trace`: what the fake MX really said to each recipient, from its transcript.
- `render`: the DSNs that reached the sink, decoded for the report, beside that transcript.
"""
