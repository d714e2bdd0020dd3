"""Channel serials: clients compare them as strings (ably-js keeps the latest channelSerial and
sends it back on reattach), so string order must be publish order, and the relay must recognise
its own serials and refuse anything else."""

from __future__ import annotations

import random
import time

import pytest

from channel_relay.protocol.serials import format_serial, new_epoch, parse_serial

# The largest seq the fixed-width format holds (16 decimal digits).
MAX_SEQ = 10**16 - 1
BOUNDARIES = [0, 1, 2, 9, 10, 11, 99, 100, 101, 999, 1000, 2**31 - 1, 2**31, 2**32, 2**53, MAX_SEQ]
BOUNDARIES += [10**k - 1 for k in range(1, 17)] + [10**k for k in range(1, 16)]


@pytest.fixture(scope="module")
def epoch() -> str:
    return new_epoch()


def test_serials_sort_as_strings_in_seq_order(epoch: str) -> None:
    rng = random.Random(20261124)
    seqs = set(BOUNDARIES)
    seqs.update(rng.randrange(0, MAX_SEQ + 1) for _ in range(5000))
    for digits in range(1, 17):  # every width, so no carry or padding case is skipped
        seqs.update(rng.randrange(0, 10**digits) for _ in range(50))
    by_seq = sorted(seqs)
    by_string = sorted(seqs, key=lambda seq: format_serial(epoch, seq))
    assert by_string == by_seq


def test_consecutive_serials_compare_in_order_at_every_boundary(epoch: str) -> None:
    for seq in BOUNDARIES:
        if seq < MAX_SEQ:
            assert format_serial(epoch, seq) < format_serial(epoch, seq + 1), seq


def test_serials_have_a_fixed_width(epoch: str) -> None:
    widths = {len(format_serial(epoch, seq)) for seq in BOUNDARIES}
    assert len(widths) == 1


def test_a_serial_parses_back_to_its_epoch_and_seq(epoch: str) -> None:
    rng = random.Random(7)
    for seq in [*BOUNDARIES, *(rng.randrange(MAX_SEQ) for _ in range(1000))]:
        assert parse_serial(format_serial(epoch, seq)) == (epoch, seq)


def test_epochs_are_fixed_width_and_distinct() -> None:
    epochs = {new_epoch() for _ in range(200)}
    assert {len(e) for e in epochs} == {12}
    assert len(epochs) > 1
    for e in epochs:
        assert parse_serial(format_serial(e, 1)) == (e, 1)


def test_a_later_epoch_sorts_after_an_earlier_one() -> None:
    # A recreated log (a wiped database) must not hand out serials that sort before old ones.
    earlier = new_epoch()
    time.sleep(0.003)
    later = new_epoch()
    assert later > earlier
    assert format_serial(later, 0) > format_serial(earlier, MAX_SEQ)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-",
        "abc",
        "0000000000000001",
        "01726585978590-001@abcdef:001",  # the shape of an Ably service serial
        "short-0000000000000001",  # epoch too short
        "abcdefghijklm-0000000000000001",  # epoch too long
        "abcdefghijkl-000000000000001",  # seq too short
        "abcdefghijkl-00000000000000001",  # seq too long
        "abcdefghijkl-00000000000000x1",  # seq not a number
        "abcdefghijkl-+000000000000001",  # a sign is not a digit
        "abcdefghijkl- 000000000000001",
        "abcdefghijkl-0000000000000001 ",
        "abcdefghijkl_0000000000000001",  # no separator
        "abcdefghijkl-" + "²" * 16,  # str.isdigit() says yes, int() says no
        "abcdefghijkl-" + "\uff10" * 16,  # full-width digits are not ours either
        "abcdefghijkl-" + "٣" * 16,  # nor Arabic-Indic ones
    ],
    ids=repr,
)
def test_strings_the_relay_did_not_mint_parse_to_none(text: str) -> None:
    assert parse_serial(text) is None
