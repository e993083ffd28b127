"""MLLP's deframer (vitalsim.protocol.mllp): whatever way TCP cuts the bytes, the same
messages come out, and bytes that are not MLLP are refused with the reason, never dropped."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitalsim.protocol.alarm_channel import LocalProtocolError, RemoteProtocolError
from vitalsim.protocol.mllp import MllpDeframer, frame

# an HL7 message's bytes: anything but MLLP's own envelope bytes
message_bytes = st.binary(min_size=1, max_size=300).map(
    lambda b: b.replace(b"\x0b", b"").replace(b"\x1c", b"") or b"MSH|")


@given(st.lists(message_bytes, min_size=1, max_size=6), st.data())
@settings(max_examples=300, deadline=None)
def test_messages_come_out_whole_however_the_stream_is_cut(messages, data):
    stream = b"".join(frame(m) for m in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    deframer = MllpDeframer()
    out, start = [], 0
    for cut in [*cuts, len(stream)]:
        out += deframer.feed(stream[start:cut])
        start = cut
    assert out == messages
    assert deframer.buffered == 0
    deframer.end_of_stream()  # nothing left half-received


def test_two_messages_in_one_read_and_one_split_across_three():
    deframer = MllpDeframer()
    assert deframer.feed(frame(b"MSH|1") + frame(b"MSH|2")) == [b"MSH|1", b"MSH|2"]
    stream = frame(b"MSH|3")
    assert deframer.feed(stream[:3]) == []
    assert deframer.feed(stream[3:-1]) == []  # the end block cut between 0x1C and 0x0D
    assert deframer.feed(stream[-1:]) == [b"MSH|3"]


def test_a_newline_between_messages_is_tolerated():
    assert MllpDeframer().feed(frame(b"MSH|1") + b"\r\n" + frame(b"MSH|2")) == [b"MSH|1",
                                                                                 b"MSH|2"]


def test_a_missing_end_block_is_an_error_when_the_next_message_starts():
    deframer = MllpDeframer()
    with pytest.raises(RemoteProtocolError, match="end block") as err:
        deframer.feed(b"\x0bMSH|1" + frame(b"MSH|2"))
    assert err.value.data.startswith(b"MSH|1")  # what came is in the error, not lost
    with pytest.raises(LocalProtocolError, match="closed"):
        deframer.feed(frame(b"MSH|3"))


def test_a_missing_end_block_at_the_end_of_the_stream_is_reported():
    deframer = MllpDeframer()
    assert deframer.feed(b"\x0bMSH|half") == []
    with pytest.raises(RemoteProtocolError, match="no end block") as err:
        deframer.end_of_stream()
    assert err.value.data == b"MSH|half"


def test_bytes_before_a_start_block_are_refused():
    with pytest.raises(RemoteProtocolError, match="0x47 where a message must start"):
        MllpDeframer().feed(b"GET / HTTP/1.1\r\n")


def test_0x1c_without_0x0d_is_refused():
    with pytest.raises(RemoteProtocolError, match="not an MLLP end block"):
        MllpDeframer().feed(b"\x0bMSH|1\x1cX")


@given(st.integers(1, 200), st.integers(1, 64))
def test_buffered_bytes_are_bounded(bound, read):
    deframer = MllpDeframer(max_message=bound)
    stream = b"\x0b" + b"A" * (bound + 1)
    with pytest.raises(RemoteProtocolError, match=f"longer than {bound} bytes"):
        for i in range(0, len(stream), read):
            deframer.feed(stream[i:i + read])
            assert deframer.buffered <= bound
    assert deframer.buffered == 0


def test_a_message_at_the_bound_passes():
    assert MllpDeframer(max_message=5).feed(frame(b"MSH|1")) == [b"MSH|1"]


@given(st.binary(max_size=200))
@settings(max_examples=300)
def test_random_bytes_give_messages_or_a_remote_error_only(data):
    deframer = MllpDeframer(max_message=64)
    try:
        for message in deframer.feed(data):
            assert b"\x0b" not in message and b"\x1c" not in message
    except RemoteProtocolError as exc:
        assert str(exc)


def test_framing_refuses_a_message_holding_an_envelope_byte():
    with pytest.raises(LocalProtocolError, match="0x0B or 0x1C"):
        frame(b"MSH|\x1c")
