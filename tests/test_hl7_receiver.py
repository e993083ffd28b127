"""The course's interface engine (course.hl7_receiver) against malformed HL7: whatever bytes a
frame holds, the engine records it with the reason, answers AR when it can read the control id,
and keeps serving; it never raises out of its connection handler."""

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course.hl7_receiver import Hl7Receiver
from server import hl7_messages as hm
from tests.helpers import run
from vitalsim.protocol.mllp import MllpDeframer, frame

HEAD = "MSH|^~\\&|A|B|C|D|20260101000000"
GOOD = f"{HEAD}||ORU^R01|CID-OK|P|2.6\rPV1||I|WARD^^2"


async def exchange(reader, writer, deframer, text: bytes) -> hm.hl7.Message | None:
    """Send one framed message, return the engine's answer (None: it closed the connection)."""
    writer.write(frame(text))
    await writer.drain()
    while True:
        data = await asyncio.wait_for(reader.read(65536), 10)
        if not data:
            return None
        answers = deframer.feed(data)
        if answers:
            return hm.parse(answers[0])


@pytest.mark.parametrize("text, control_id, reason", [
    (f"{HEAD}||ORU|CID-4|P|2.6", "CID-4", "MSH-9 'ORU' has no trigger event"),
    (f"{HEAD}||ORU^R01|CID-6|P|2.6\rPV1||I|WARD", "CID-6", "PV1-3 has no bed"),
    (f"{HEAD}||ORU^R40|CID-5|P|2.6\rOBR|1\rOBX|1", "CID-5", "OBX #1 has no OBX-3"),
    (f"{HEAD}||ORU^R01|CID-7|P|2.6\rOBX|1|NM|\udcff", "CID-7", "not UTF-8"),
])
def test_a_malformed_message_is_recorded_answered_ar_and_the_connection_serves_on(
        text, control_id, reason):
    raw = text.encode("utf-8", "surrogateescape")

    async def main():
        async with Hl7Receiver() as engine:
            reader, writer = await asyncio.open_connection(*engine.target)
            deframer = MllpDeframer()
            answer = await exchange(reader, writer, deframer, raw)
            assert answer is not None, "the engine closed instead of answering AR"
            code, answered, text = hm.ack_of(answer)
            assert (code, answered) == ("AR", control_id)
            assert reason in text
            # the same connection carries on
            answer = await exchange(reader, writer, deframer, GOOD.encode())
            assert hm.ack_of(answer)[:2] == ("AA", "CID-OK")
            writer.close()
        first, second = engine.received
        assert (first.control_id, first.answer) == (control_id, "AR")
        assert reason in first.error
        assert (second.control_id, second.answer, second.bed, second.error) == \
            ("CID-OK", "AA", 2, "")
        assert engine.connections == 1

    run(main())


@pytest.mark.parametrize("raw, reason", [
    (b"\xff\xfeMSH|", "not UTF-8"),
    (b"hello", "must start with MSH"),
    (f"{HEAD}||ORU^R01||P|2.6".encode(), "MSH-10 (the control id) is empty"),
])
def test_a_message_without_a_readable_control_id_is_recorded_and_the_connection_closed(
        raw, reason):
    async def main():
        async with Hl7Receiver() as engine:
            reader, writer = await asyncio.open_connection(*engine.target)
            assert await exchange(reader, writer, MllpDeframer(), raw) is None
            writer.close()
            # another connection is served
            reader, writer = await asyncio.open_connection(*engine.target)
            answer = await exchange(reader, writer, MllpDeframer(), GOOD.encode())
            assert hm.ack_of(answer)[:2] == ("AA", "CID-OK")
            writer.close()
        first, second = engine.received
        assert first.control_id == "" and first.answer == ""
        assert reason in first.error and "connection closed" in first.error
        assert second.answer == "AA"

    run(main())


# what a frame can hold: anything but MLLP's envelope bytes; half of the examples start as an
# HL7 message does, so that the engine's reading of fields is reached, not only its first check
framed = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda fields, segs: (HEAD + "|" + "|".join(fields) + "".join(segs)).encode(
        "utf-8", "surrogateescape"),
        st.lists(st.sampled_from(["", "ORU", "ORU^R40", "ORU^R01", "ACK^", "^R01", "CID-1",
                                  "P", "2.6", "a^b~c^d", "\\F\\", "é", "\udcff"]),
                 max_size=6),
        st.lists(st.sampled_from(["\rPV1||I|WARD^^2", "\rPV1||I|WARD", "\rPV1", "\rOBR|1|x|AL",
                                  "\rOBX|1", "\rOBX|1|ST|1^MDC_ATTR_EVENT_PHASE^MDC||start",
                                  "\rOBX|1|ST|^", "\rMSH|", "\r", "\n"]), max_size=5)),
).map(lambda b: b.replace(b"\x0b", b"").replace(b"\x1c", b""))


@given(st.lists(framed, min_size=1, max_size=5))
@settings(max_examples=400, deadline=None, derandomize=True)
def test_any_bytes_in_a_frame_get_a_record_and_never_raise(messages):
    engine = Hl7Receiver()
    deframer = MllpDeframer()
    frames = deframer.feed(b"".join(frame(m) for m in messages))
    assert frames == messages
    for number, raw in enumerate(frames, start=1):
        answer, close = engine._take(raw)
        assert len(engine.received) == number
        record = engine.received[-1]
        assert not record.error.startswith("the engine could not read"), record.error
        if answer is not None:  # a well-formed answer, to the control id read
            assert hm.ack_of(hm.parse(answer))[1] == record.control_id
            assert record.answer in ("AA", "AR")
            assert (record.answer == "AR") == bool(record.error)
        else:
            assert close and record.error and record.control_id == ""
        if close:
            break


@pytest.mark.parametrize("count, error", [(2.5, TypeError), ("2", TypeError), (True, TypeError),
                                          (0, ValueError)])
def test_answer_next_names_a_bad_count(count, error):
    with pytest.raises(error, match="count="):
        Hl7Receiver().answer_next("AE", count)


def test_answer_next_keeps_a_count_not_a_list():
    import tracemalloc
    engine = Hl7Receiver()
    tracemalloc.start()
    try:
        engine.answer_next("AE", 10**8, "down for maintenance")
        engine.answer_next("AR", 1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100_000, peak
    for n in range(3):
        answer, _ = engine._take(GOOD.replace("CID-OK", f"CID-{n}").encode())
        assert hm.ack_of(hm.parse(answer)) == ("AE", f"CID-{n}", "down for maintenance")
    assert [r.answer for r in engine.received] == ["AE"] * 3


def test_messages_behind_one_that_closes_the_connection_are_recorded_as_not_read():
    async def main():
        async with Hl7Receiver() as engine:
            reader, writer = await asyncio.open_connection(*engine.target)
            writer.write(frame(b"hello") + frame(GOOD.encode()))
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 10) == b""  # closed, no answer
            writer.close()
        first, second = engine.received
        assert "must start with MSH" in first.error
        assert second.error.startswith("not read: the connection was closed")
        assert "CID-OK" in second.text

    run(main())
