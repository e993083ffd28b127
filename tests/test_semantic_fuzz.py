"""The semantic fuzz: input that *decodes* but makes no sense, against a running station.

Random bytes mostly fail at the magic number. This fuzz is structure-aware: valid telemetry
headers (right magic and version) carrying any type, any flags, any body length, any float bit
pattern in the numerics, any sequence number, send time and boot id, from provisioned devices and
others; and alarm frames whose JSON has any values of any types. Seeded (derandomized), so a
run is repeatable. The invariants, checked after every example or at the end:

- every API answer and every WebSocket message stays valid (strict) JSON;
- no bed appears that no provisioned device owns;
- a dashboard connected through the whole fuzz still receives an alarm raised after it;
- memory stays bounded (beds, their histories, and the process's resident memory).
"""

import asyncio
import json
import socket
import struct
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tornado.websocket import websocket_connect

from tests.helpers import next_message, wait_until
from tests.station_client import WARD, alarm, get, rss_bytes, station, strict
from vitalsim.protocol.alarm_channel import FrameDecoder, FrameType, Hello, encode_alarm_frame
from vitalsim.protocol.telemetry import HEADER, MAGIC, VERSION

EXAMPLES = 250

floats32 = st.integers(0, 2**32 - 1).map(lambda bits: struct.pack("!I", bits))  # any pattern
nice_floats = st.sampled_from([72.0, 97.0, 0.0, -1.0, 1e30, float("nan"), float("inf"),
                               -float("inf"), 100.0001, 350.0]).map(lambda v: struct.pack("!f", v))
numerics_body = st.tuples(*[st.one_of(floats32, nice_floats)] * 7, st.binary(min_size=8,
                          max_size=8)).map(b"".join)
wave_body = st.builds(
    lambda channel, rate, first, count, extra: struct.pack("!BBHIH", channel, 0, rate, first,
                                                          count) + b"\x01\x00" * (count + extra),
    st.sampled_from([1, 2, 3, 0, 4]), st.sampled_from([250, 125, 25, 0, 65535]),
    st.integers(0, 2**32 - 1), st.integers(0, 600),
    st.one_of(st.just(0), st.just(0), st.just(0), st.integers(-3, 3)))
BODY_OF_TYPE = {1: numerics_body, 2: wave_body}
sent_at_us = st.one_of(
    st.floats(-5, 1).map(lambda d: round((time.time() + d) * 1e6)),  # about now: plausible
    st.integers(0, 2**64 - 1),  # any time at all
    st.just(round((time.time() + 365 * 86400) * 1e6)))  # a year ahead
#: a few boots of one device, so that restarts and older boots interleave, and any u64
boot_ids = st.one_of(st.sampled_from([0, round((time.time() - 60) * 1e6),
                                      round((time.time() - 1) * 1e6)]),
                     st.integers(0, 2**64 - 1))


@st.composite
def datagrams(draw) -> bytes:
    """A valid header; mostly a body of its type and its true length, so most datagrams
    decode and reach the checks after decoding."""
    mtype = draw(st.sampled_from([1, 1, 1, 2, 2, 0, 3, 255]))
    payload = draw(BODY_OF_TYPE.get(mtype, st.binary(max_size=64)) if draw(
        st.integers(0, 9)) else st.one_of(numerics_body, wave_body, st.binary(max_size=64)))
    honest_length = draw(st.integers(0, 9)) > 0
    return HEADER.pack(
        MAGIC, VERSION, mtype, draw(st.integers(0, 255)), 0,
        draw(st.sampled_from([1, 2, 1, 2, 3, 0, 65535])),
        draw(st.sampled_from([1001, 1002, 1001, 1002, 4242, 0, 2**32 - 1])),
        draw(st.one_of(st.integers(0, 64), st.integers(0, 2**32 - 1))), draw(sent_at_us),
        draw(boot_ids), len(payload) if honest_length else draw(st.integers(0, 65535))) + payload


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=8)
ALARM_FIELDS = ("alarm_id", "device_id", "bed", "condition", "priority", "state", "value",
                "limit", "timestamp")


@st.composite
def alarm_frames(draw) -> bytes:
    """An ALARM frame: a real alarm's fields, some replaced by any JSON value (NaN included)."""
    fields = dict(alarm(draw(st.integers(1, 10**6))).__dict__)
    for key in draw(st.lists(st.sampled_from(ALARM_FIELDS), max_size=4)):
        fields[key] = draw(json_values)
    payload = json.dumps(fields).encode("utf-8", "surrogatepass")[:16000]
    return struct.pack("!IB", 1 + len(payload), FrameType.ALARM) + payload


def test_the_station_survives_input_that_decodes_but_makes_no_sense():
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # Tornado's clients look for the current loop
    st_ = station()
    loop.run_until_complete(st_.start())
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ws_messages: list[str] = []
    examples = {"n": 0, "datagrams": 0, "frames": 0}

    async def dashboard():
        ws = await websocket_connect(f"ws://127.0.0.1:{st_.http_port}/ws")
        await next_message(ws, "snapshot")

        async def read():
            while (msg := await ws.read_message()) is not None:
                ws_messages.append(msg)
        return ws, asyncio.ensure_future(read())

    async def send(batch: list[bytes], frames: list[bytes]) -> None:
        before = st_.ingest.received + st_.ingest.rejects.total
        for data in batch:
            udp.sendto(data, ("127.0.0.1", st_.udp_port))
        await wait_until(lambda: st_.ingest.received + st_.ingest.rejects.total
                         >= before + len(batch), timeout=10, interval=0.001,
                         what="the station to read the batch of telemetry")
        for frame in frames:
            r, w = await asyncio.open_connection("127.0.0.1", st_.tcp_port)
            w.write(encode_alarm_frame(Hello(1001, 1)) + frame)
            decoder, answer = FrameDecoder(), []
            while not answer:  # an ACK, or an ERROR (and the station closes)
                data = await asyncio.wait_for(r.read(4096), 10)
                assert data, "closed without an ERROR frame saying why"
                answer = [f for f in decoder.feed(data) if type(f).__name__ in ("Ack", "Error")]
            w.close()

    ws, reader = loop.run_until_complete(dashboard())
    rss_before = rss_bytes()
    try:
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(st.lists(datagrams(), min_size=1, max_size=12),
               st.lists(alarm_frames(), max_size=1))
        def check(batch, frames):
            examples["n"] += 1
            examples["datagrams"] += len(batch)
            examples["frames"] += len(frames)
            loop.run_until_complete(send(batch, frames))
            assert set(st_.beds.beds) <= set(WARD.values()), "a bed nobody provisioned"
            strict(json.dumps(st_.snapshot(), allow_nan=False))
            for entry in st_.board.entries():
                strict(json.dumps(entry.to_json(), allow_nan=False))

        started = time.monotonic()
        check()
        seconds = time.monotonic() - started

        async def after():
            for path in ("api/beds", "api/beds/1", "api/beds/2", "api/stats", "api/alarms",
                         "api/beds/1/history", "healthz"):
                code, _, _ = await get(st_, path)  # get() parses the body as JSON
                assert code in (200, 404), path
            r, w = await asyncio.open_connection("127.0.0.1", st_.tcp_port)
            w.write(encode_alarm_frame(Hello(1002, 2)) + encode_alarm_frame(
                alarm(1, alarm_id="1002-5-after-the-fuzz", device_id=1002, bed=2)))
            await wait_until(lambda: any("1002-5-after-the-fuzz" in m for m in ws_messages),
                             timeout=10, what="the alarm sent after the fuzz at the dashboard")
            w.close()
        loop.run_until_complete(after())
        for message in ws_messages:
            strict(message)
        grown = rss_bytes() - rss_before
        assert len(st_.beds.beds) <= len(WARD)
        assert all(len(b.history) <= b.history.maxlen for b in st_.beds.beds.values())
        assert grown < 60_000_000, f"resident memory grew {grown} bytes"
        print(f"\nsemantic fuzz: {examples['n']} examples, {examples['datagrams']} datagrams, "
              f"{examples['frames']} alarm frames in {seconds:.1f} s; accepted "
              f"{st_.ingest.received}; rejects "
              f"{dict(st_.ingest.rejected)}; alarm errors {dict(st_.alarm_listener.errors)}; "
              f"memory +{grown / 1e6:.1f} MB; {len(ws_messages)} WebSocket messages, all JSON")
    finally:
        udp.close()
        ws.close()
        reader.cancel()
        loop.run_until_complete(st_.stop())
        loop.close()
        asyncio.set_event_loop(None)
