"""harness.targets.queue: reading `exim -bp` listings.

The samples follow Exim's own layout (queue.c: age, size, id, <sender>, " *** frozen ***";
recipient lines indented by eight spaces, then "D" or " ", a space and the address).
"""

from __future__ import annotations

import pytest

from harness.engine.observations import Observations
from harness.targets.queue import QueueEntry, parse_exim, parse_queue

ONE_MESSAGE_PARTLY_DELIVERED = """\
 0m   523 1sZ0aB-0004Ix-2T <sender@client.test>
          r1@d.test
        D r2@d.test
          r3@d.test

"""

FROZEN_BOUNCE = """\
25h  2.9K 1sYvEo-0001Ae-0J <> *** frozen ***
          sender@client.test

"""

SEVERAL = """\
 4d  176K 1sXxYz-000Hzk-En <alice@client.test>
          bob@d.test

42h  1.3K 1sY1XR-000ERo-TH <> *** frozen ***
          alice@client.test

 2m   980 1sZ0aC-0004J0-0A <carol@client.test>
        D dave@d.test
        D erin@d.test
          Frank@D.test

"""

# Exim 4.97 and later: base-62 ids of 6, 11 and 4 characters.
NEW_IDS = """\
 1m   612 1sZ0aB-00000000J2c-0Q1w <sender@client.test>
          r1@d.test
        D r2@d.test

"""


def test_partly_delivered_message() -> None:
    assert parse_exim(ONE_MESSAGE_PARTLY_DELIVERED) == [
        QueueEntry("1sZ0aB-0004Ix-2T", "sender@client.test", ("r1@d.test", "r3@d.test"), ("r2@d.test",)),
    ]


def test_frozen_bounce_with_null_sender() -> None:
    [entry] = parse_exim(FROZEN_BOUNCE)
    assert entry == QueueEntry("1sYvEo-0001Ae-0J", "", ("sender@client.test",), (), frozen=True)


@pytest.mark.parametrize("text", ["", "\n", "   \n\n"])
def test_empty_queue(text: str) -> None:
    assert parse_exim(text) == []


def test_several_messages_in_listing_order() -> None:
    entries = parse_exim(SEVERAL)
    assert [e.id for e in entries] == ["1sXxYz-000Hzk-En", "1sY1XR-000ERo-TH", "1sZ0aC-0004J0-0A"]
    assert [e.sender for e in entries] == ["alice@client.test", "", "carol@client.test"]
    assert [e.frozen for e in entries] == [False, True, False]
    assert entries[0].recipients == ("bob@d.test",) and entries[0].delivered == ()
    assert entries[2].recipients == ("Frank@D.test",)
    assert entries[2].delivered == ("dave@d.test", "erin@d.test")


def test_new_style_message_ids() -> None:
    [entry] = parse_exim(NEW_IDS)
    assert entry.id == "1sZ0aB-00000000J2c-0Q1w"
    assert entry.recipients == ("r1@d.test",) and entry.delivered == ("r2@d.test",)


def test_without_trailing_blank_line_or_with_crlf() -> None:
    text = ONE_MESSAGE_PARTLY_DELIVERED.rstrip("\n")
    assert parse_exim(text) == parse_exim(ONE_MESSAGE_PARTLY_DELIVERED)
    assert parse_exim(SEVERAL.replace("\n", "\r\n")) == parse_exim(SEVERAL)


def test_recipient_lines_before_any_message_are_ignored() -> None:
    assert parse_exim("          stray@d.test\n" + FROZEN_BOUNCE) == parse_exim(FROZEN_BOUNCE)


def test_parse_queue_dispatches_on_the_spec_format() -> None:
    assert parse_queue("exim", SEVERAL) == parse_exim(SEVERAL)
    with pytest.raises(KeyError):
        parse_queue("sendmail", SEVERAL)


def test_observations_queued_is_what_is_still_to_be_delivered() -> None:
    obs = Observations("s", "exim", queue=parse_exim(SEVERAL))
    assert obs.queued() == {"bob@d.test", "alice@client.test", "frank@d.test"}
    assert Observations("s", "exim", queue=parse_exim("")).queued() == set()
    assert Observations("s", "exim").queued() == set()
