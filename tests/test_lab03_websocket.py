"""Lab 03's helpers: the accept key, the reference frame parser (against frames Tornado itself
writes, both ways), TCP stream reassembly, the plain-socket client, the loopback sniffer, and the
push-against-polling measurement on a running station."""

import asyncio
import json
import os
import random
import socket

import pandas as pd
import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket
from scapy.all import IP, TCP, Raw, rdpcap
from tornado.websocket import websocket_connect

from course.constants import HR_ALARM_AT_ONCE, RECORDED_HTTP_PORT, RECORDINGS
from course.push_vs_poll import PUSH, poll_method, push_versus_polling, summarize
from course.websocket import (
    IncompleteFrame,
    LoopbackSniffer,
    RawWebSocket,
    accept_key,
    close_payload,
    connection_closed,
    encode_websocket_frame,
    explain_header,
    http_head,
    iter_frames,
    parse_frame,
    tcp_streams,
)
from server import StationConfig, System
from server.system import SystemConfig
from tests.helpers import run, wait_until
from tests.requirements import require_capture
from vitalsim.devices import WardConfig

CAPTURES = RECORDINGS
SIZES = [0, 5, 125, 126, 1000, 65535, 65536, 70000]  # either side of each length encoding


def test_accept_key_is_rfc_6455s_own_example():
    # RFC 6455, section 1.3
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_the_recorded_handshake_answers_its_own_key():
    streams = tcp_streams(rdpcap(str(CAPTURES / "websocket.pcap")), RECORDED_HTTP_PORT)
    request, response = http_head(streams["client"].data), http_head(streams["server"].data)
    assert request[0] == "GET /ws HTTP/1.1" and response[0].startswith("HTTP/1.1 101")
    assert response[1]["sec-websocket-accept"] == accept_key(request[1]["sec-websocket-key"])


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mask", [None, b"\x00\xff\x5a\xa5"])
def test_encode_and_parse_agree_and_a_cut_off_frame_is_incomplete(size, mask):
    payload = bytes((i * 7) % 256 for i in range(size))
    data = encode_websocket_frame(payload, opcode=0x2, mask=mask)
    frame = parse_frame(data)
    assert (frame.fin, frame.opcode, frame.masked, frame.length) == (True, 2, mask is not None,
                                                                     size)
    assert frame.payload == payload and frame.size == len(data)
    assert frame.header_size == 2 + (0 if size < 126 else 2 if size < 65536 else 8) \
        + (4 if mask else 0)
    for cut in {0, 1, frame.header_size - 1, len(data) - 1} - {len(data)}:
        if cut >= 0:
            with pytest.raises(IncompleteFrame):
                parse_frame(data[:cut])


def test_masking_changes_the_bytes_on_the_wire_but_not_the_payload():
    masked = encode_websocket_frame("Hello", mask=b"\x37\xfa\x21\x3d")
    assert b"Hello" not in masked
    assert masked == bytes.fromhex("818537fa213d7f9f4d5158")  # RFC 6455, section 5.7
    assert parse_frame(masked).text() == "Hello"


class Sender(tornado.websocket.WebSocketHandler):
    """Sends one text message of each size, a binary one, a ping, then closes with 4000."""

    def open(self) -> None:
        for size in SIZES:
            self.write_message("x" * size)
        self.write_message(b"\x00\x01\x02", binary=True)
        self.ping(b"are you there")
        self.close(4000, "too far behind")


def sender_server() -> tuple[tornado.httpserver.HTTPServer, int]:
    """A Tornado server whose /ws is :class:`Sender`, on an ephemeral port of loopback."""
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
    server = tornado.httpserver.HTTPServer(tornado.web.Application([(r"/ws", Sender)]))
    server.add_sockets(sockets)
    return server, sockets[0].getsockname()[1]


def test_the_parser_reads_what_a_tornado_server_writes():
    async def main():
        server, port = sender_server()
        try:
            ws = await RawWebSocket.connect("127.0.0.1", port)  # checks the accept key too
            frames, close = await ws.read_until_close(timeout=10)
            ws.close()
        finally:
            server.stop()
        assert [f.length for f in frames[:len(SIZES)]] == SIZES
        assert all(f.text() == "x" * f.length for f in frames[:len(SIZES)])
        assert [f.kind for f in frames[len(SIZES):]] == ["binary", "ping"]
        assert frames[-2].payload == b"\x00\x01\x02" and frames[-1].payload == b"are you there"
        assert not any(f.masked for f in frames), "a server never masks"
        assert close is not None and (close.close_code, close.close_reason) == (
            4000, "too far behind")
        assert ws.bytes_received == ws.handshake_received + sum(
            f.size for f in frames) + close.size
    run(main())


def test_the_parser_unmasks_what_a_tornado_client_writes():
    """A server by hand: read the upgrade, answer it, then keep every byte the client sends."""
    received = bytearray()
    done = asyncio.Event()

    async def handle(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        key = http_head(head)[1]["sec-websocket-key"]
        writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n").encode())
        while chunk := await reader.read(65536):
            received.extend(chunk)
            if any(f.opcode == 0x8 for _, f in iter_frames(bytes(received))):
                writer.write(encode_websocket_frame(close_payload(1000), opcode=0x8))
                await writer.drain()
                break
        writer.close()
        done.set()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ws = await websocket_connect(f"ws://127.0.0.1:{port}/ws")
        for size in SIZES:
            await ws.write_message("y" * size)
        await ws.write_message(b"\xff\x00", binary=True)
        ws.close(1000, "done")
        await asyncio.wait_for(done.wait(), 10)
        server.close()
        await server.wait_closed()

    run(main())
    frames = [f for _, f in iter_frames(bytes(received))]
    assert all(f.masked and f.mask is not None for f in frames), "a client always masks"
    assert [f.length for f in frames[:len(SIZES)]] == SIZES
    assert all(f.text() == "y" * f.length for f in frames[:len(SIZES)])
    assert frames[len(SIZES)].payload == b"\xff\x00"
    assert (frames[-1].close_code, frames[-1].close_reason) == (1000, "done")
    assert sum(f.size for f in frames) == len(received)


def segment(seq: int, payload: bytes = b"", flags: str = "PA", *, to_server: bool = True):
    ports = (40000, 8080) if to_server else (8080, 40000)
    return (IP(src="127.0.0.1", dst="127.0.0.1") /
            TCP(sport=ports[0], dport=ports[1], seq=seq, flags=flags) / Raw(payload))


def test_streams_are_reassembled_in_sequence_order_counting_retransmissions_once():
    packets = [
        segment(999, flags="S"),                      # 0: SYN, the data starts at 1000
        segment(5000, flags="SA", to_server=False),   # 1
        segment(1005, b"world"),                      # 2: arrives first
        segment(1000, b"hello"),                      # 3
        segment(1000, b"hello"),                      # 4: a retransmission
        segment(1010, b"!"),                          # 5
        segment(5001, b"ok", to_server=False),        # 6
        IP() / TCP(sport=1, dport=2) / Raw(b"other"),  # 7: another connection
    ]
    streams = tcp_streams(packets, 8080)
    assert streams["client"].data == b"helloworld!" and streams["server"].data == b"ok"
    assert [streams["client"].packet_at(i) for i in (0, 4, 5, 10)] == [3, 3, 2, 5]
    assert streams["client"].src == ("127.0.0.1", 40000)


def test_sniffing_loopback_catches_a_whole_websocket_conversation():
    require_capture()

    async def main():
        server, port = sender_server()
        try:
            with LoopbackSniffer(f"tcp port {port}") as sniffer:
                ws = await RawWebSocket.connect("127.0.0.1", port)
                await ws.read_until_close(timeout=10)
                ws.close()
                assert await sniffer.wait_until(connection_closed, timeout=5)
        finally:
            server.stop()
        streams = tcp_streams(sniffer.packets, port)
        assert http_head(streams["client"].data)[0] == "GET /ws HTTP/1.1"
        _, headers, end = http_head(streams["server"].data)
        frames = [f for _, f in iter_frames(streams["server"].data, end)]
        assert frames[-1].close_code == 4000
        assert sum(f.size for f in frames) == len(streams["server"].data) - end
    run(main())


def test_summary_of_push_and_polling_from_a_known_log():
    arrivals = pd.DataFrame({
        "method": [PUSH, PUSH, "poll every 1 s", "poll every 1 s", "poll every 1 s"],
        "bed": [1, 2, 1, 2, 1],
        "sent_at": [10.0, 10.0, 10.0, 10.0, 11.0],
        "received_at": [10.1, 10.3, 10.5, 10.5, 11.9],
    })
    traffic = pd.DataFrame({"screens": [1, 2], "messages": [10, 8], "bytes": [2000, 6000],
                            "seconds": [2.0, 2.0]}, index=pd.Index([PUSH, "poll every 1 s"],
                                                                   name="method"))
    out = summarize(arrivals, traffic)
    assert list(out.index) == [PUSH, "poll every 1 s"]
    assert out["new_values"].tolist() == [2, 3]
    assert out["median_latency_ms"].round(6).tolist() == [200.0, 500.0]
    assert out["max_latency_ms"].round(6).tolist() == [300.0, 900.0]
    assert out["bytes_per_s"].tolist() == [1000.0, 1500.0]  # per screen
    assert out["bytes_per_value"].tolist() == [1000.0, 2000.0]


def test_push_and_polling_watch_a_live_station_and_count_every_byte():
    async def main():
        async with System.ephemeral(beds=2, scenario="stable_adult", waves=False) as sys_:
            await sys_.wait_ready()
            arrivals, traffic = await push_versus_polling(
                "127.0.0.1", sys_.station.http_port, seconds=2.5, intervals=(0.5,), screens=2)
        return arrivals, traffic

    arrivals, traffic = run(main())
    poll = poll_method(0.5)
    assert list(traffic.index) == [PUSH, poll]
    assert traffic.loc[poll, "screens"] == 2
    # each screen polls at 0, 0.5, ... 2.0 s (the second one a quarter second later): 5 each
    assert 8 <= traffic.loc[poll, "messages"] <= 10, traffic
    assert traffic.loc[poll, "bytes"] > traffic.loc[poll, "messages"] * 300, \
        "every answer carries its headers and both beds"
    latency = arrivals["received_at"] - arrivals["sent_at"]
    assert (latency >= 0).all() and (latency < 2.0).all(), arrivals
    for method in (PUSH, poll):
        beds = set(arrivals.loc[arrivals["method"] == method, "bed"])
        assert beds == {1, 2}, f"{method} saw new values of beds {beds} in 2.5 s"


def test_a_plain_socket_client_that_stops_reading_is_closed_with_4000_and_reads_why():
    """What Lab 03 shows: the stalled client's vitals are dropped, alarms queue up until the
    limit, then the station closes it; reading again, it finds the close frame and its code."""
    async def main():
        cfg = SystemConfig(
            StationConfig(http_port=0, udp_port=0, tcp_port=0, client_alarm_queue=10,
                          client_send_buffer=8192),
            WardConfig(beds=2, scenario="stable_adult", waves=True,
                       limits=HR_ALARM_AT_ONCE))
        async with System(cfg) as sys_:
            st = sys_.station
            await sys_.wait_ready()
            await wait_until(lambda: len(st.board.entries("active")) == 2, what="2 alarms")
            stalled = await RawWebSocket.connect("127.0.0.1", st.http_port, rcvbuf=4096)
            try:
                await stalled.send_text(json.dumps({"type": "subscribe", "waves": [1, 2]}))
                await wait_until(lambda: st.hub.counters()["stalled"] == 1
                                 and st.hub.counters()["superseded"] > 0, timeout=20,
                                 what="the stalled client to stop reading, its vitals dropped")
                healthy = await RawWebSocket.connect("127.0.0.1", st.http_port)
                ids = [e.alarm_id for e in st.board.entries("active")]
                updates = 0
                for n in range(15):  # one silence at a time, each answered before the next
                    await healthy.send_text(json.dumps({"type": "silence", "user": "test",
                                                        "alarm_id": ids[n % 2], "seconds": 60}))
                    while True:
                        frame = await asyncio.wait_for(healthy.read_frame(), 10)
                        if json.loads(frame.payload)["type"] == "alarm":
                            updates += 1
                            break
                assert updates == 15
                await wait_until(lambda: st.hub.disconnected_slow == 1, what="the 4000 close")
                frames, close = await stalled.read_until_close(timeout=5)
                healthy.close()
            finally:
                stalled.close()
        assert close is not None and close.close_code == 4000, frames[-3:]
        assert "too far behind on alarms" in close.close_reason
        kinds = [json.loads(f.payload)["type"] for f in frames]
        # the alarms queued for it were never sent: it must reconnect and resync from a snapshot
        assert kinds[0] == "snapshot" and kinds.count("alarm") < 10
    run(main())


def test_every_frame_in_a_random_stream_is_found_at_its_offset():
    rng = random.Random(3)
    stream, offsets = b"", []
    for _ in range(50):
        offsets.append(len(stream))
        size = rng.choice([0, 10, 125, 126, 300, 65536])
        mask = os.urandom(4) if rng.random() < 0.5 else None
        stream += encode_websocket_frame(bytes(size), opcode=rng.choice([1, 2, 9, 10]), mask=mask)
    assert [o for o, _ in iter_frames(stream)] == offsets
    assert [o for o, _ in iter_frames(stream[:-1])] == offsets[:-1]


class _OutboxKeepingItsPlace:
    """Exercise 4 answered but for one rule: a replaced kind keeps its old place in the line."""

    def __init__(self, max_alarms: int) -> None:
        self.max_alarms, self.latest, self.alarms, self.dropped = max_alarms, {}, [], 0

    def offer_latest(self, kind: str, message: str) -> None:
        if kind in self.latest:
            self.dropped += 1
        self.latest[kind] = message              # a dict keeps the key where it was

    def offer_alarm(self, message: str) -> bool:
        if len(self.alarms) >= self.max_alarms:
            return False
        self.alarms.append(message)
        return True

    def take(self) -> str | None:
        if self.alarms:
            return self.alarms.pop(0)
        return self.latest.pop(next(iter(self.latest))) if self.latest else None


class _OutboxStub:
    def __init__(self, max_alarms: int) -> None:
        pass

    def offer_latest(self, kind, message):
        raise NotImplementedError("your code here")

    offer_alarm = take = offer_latest


def test_lab03_exercise4_fails_an_outbox_whose_replaced_kind_keeps_its_place():
    from course import Checks, not_done_yet
    from tests.labcells import run_cell

    def checks_for(outbox):
        ns = run_cell("03", 'Checks("Exercise 4', {"Checks": Checks, "not_done_yet": not_done_yet,
                                                   "Outbox": outbox})
        return ns["checks"]

    wrong = checks_for(_OutboxKeepingItsPlace)
    assert [r.name for r in wrong.results if r.status == "fail"] == \
        ["vitals v1, stats s1, vitals v2: the order they are sent"], wrong.report()
    assert "at position 0 expected 's1', got 'v2'" in wrong.report()
    assert checks_for(_OutboxStub).status == "not done yet"


def test_explain_header_reads_each_side_of_the_recording():
    """What lab 03 prints of the first frame each side sent: the lengths and keys it names are
    the frame's own (tests/test_traces.py runs the lab's cells over students' captures too)."""
    streams = tcp_streams(rdpcap(str(CAPTURES / "websocket.pcap")), 15080)
    for name in ("client", "server"):
        data = streams[name].data
        start = http_head(data)[2]
        frame = parse_frame(data, start)
        said = explain_header(data, start)
        assert f"opcode {frame.opcode} ({frame.kind})" in said
        assert (f"`{frame.length.to_bytes(2, 'big').hex(' ')}` = {frame.length}" in said
                if frame.length >= 126 else f"{frame.length} bytes" in said)
        assert (frame.mask is None) != (f"the key `{(frame.mask or b'').hex(' ')}`" in said)
