"""Lab 03's capture, generated: one dashboard's whole WebSocket conversation with a station, as
``websocket.pcap`` records it live (``course.captures.websocket``), from a seed alone.

The station is the course's own (``server.Station``, not started: no sockets) on a virtual clock,
fed its two beds' telemetry by the simulator's monitors; its snapshot and vitals messages are the
ones it would push, encoded by its own code. The client's key and masking keys are seeded random
bytes; the accept key, the frames and the close payloads come from :mod:`course.websocket`. TCP is
:mod:`course.tcp_trace` on loopback, nothing lost:

1. the handshake, the client's ``GET /ws`` with ``Upgrade: websocket`` and ``Sec-WebSocket-Key``,
   the station's ``101 Switching Protocols`` with ``Sec-WebSocket-Accept``;
2. the snapshot, then a vitals push of both beds (unmasked, 16-bit lengths);
3. the client's ``subscribe`` to one bed (masked), the station's ``subscribed`` (7-bit length)
   and that bed's vitals;
4. a close frame from each side, status 1000 (the client's masked, with its reason), and the
   TCP FINs.
"""

from __future__ import annotations

import base64
import email.utils
import json
import random

from course.constants import RECORDED_HTTP_PORT
from course.tcp_trace import TcpEnd, Wire
from course.websocket import accept_key, close_payload, encode_websocket_frame
from server.config import StationConfig
from server.hub import encode, vitals_message
from server.station import Station
from vitalsim.clock import VirtualClock
from vitalsim.devices.monitor import BedsideMonitor

LOOPBACK = "127.0.0.1"
#: what the recording's client and station call themselves (Tornado's own headers)
_CLIENT_HEADERS = "User-Agent: Tornado/6.6.1\r\nAccept-Encoding: gzip\r\n"
_SERVER_NAME = "TornadoServer/6.6.1"


def websocket(seed: int, start: float) -> list:
    """The packets of one dashboard's conversation with a two-bed station, from ``seed``."""
    rng = random.Random(f"websocket|{seed}")
    clock = VirtualClock(start - 3.0)
    station = Station(StationConfig(devices={1001: 1, 1002: 2}), clock=clock)
    boot = start - rng.uniform(20.0, 600.0)
    monitors = [BedsideMonitor(1000 + bed, bed, "stable_adult", seed=seed * 10 + bed,
                               waves=False, boot_id=round(boot * 1_000_000)) for bed in (1, 2)]
    sim = {"t": 0}

    def telemetry(until: float) -> None:  # the beds' numerics reach the station, once a second
        while start - 3.0 + sim["t"] <= until:
            for monitor in monitors:
                at = start - 3.0 + sim["t"] + rng.uniform(0.0, 0.01)
                clock.set(max(clock.now(), at))
                datagrams, _ = monitor.poll(float(sim["t"]), at)
                for data in datagrams:
                    station.ingest.datagram_received(data, (LOOPBACK, 40000 + monitor.bed))
            sim["t"] += 1

    wire = Wire(delay=0.00003, ethernet=True, rng=rng)
    key = base64.b64encode(rng.randbytes(16)).decode()
    subscribe_to = rng.choice((1, 2))

    def write(end: TcpEnd, data: bytes, t: float) -> None:
        telemetry(t)
        end.write(data, t)

    def accepted(end: TcpEnd, now: float) -> None:
        server_end["end"] = end

    server_end: dict = {}
    wire.listen(LOOPBACK, RECORDED_HTTP_PORT, accepted, ack_delay=0.0)
    client = TcpEnd(wire, LOOPBACK, 32768 + rng.randrange(28000), LOOPBACK, RECORDED_HTTP_PORT,
                    iss=rng.getrandbits(31), ts_base=rng.getrandbits(31), rng=rng)
    client.connect(start)
    t = start + rng.uniform(0.02, 0.05)
    wire.run(t)
    request = (f"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-Websocket-Key: {key}\r\nSec-Websocket-Version: 13\r\n"
               f"Host: {LOOPBACK}:{RECORDED_HTTP_PORT}\r\n{_CLIENT_HEADERS}\r\n")
    write(client, request.encode(), t)
    t += rng.uniform(0.03, 0.09)
    wire.run(t)
    station_end: TcpEnd = server_end["end"]
    response = (f"HTTP/1.1 101 Switching Protocols\r\nServer: {_SERVER_NAME}\r\n"
                f"Date: {email.utils.formatdate(t, usegmt=True)}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-Websocket-Accept: {accept_key(key)}\r\n\r\n")
    write(station_end, response.encode(), t)
    t += rng.uniform(0.02, 0.05)
    wire.run(t)
    telemetry(t)
    write(station_end, encode_websocket_frame(station.snapshot_message()), t)
    t += rng.uniform(0.15, 0.3)  # the next coalesced push, after the next second's numerics
    wire.run(t)
    telemetry(t + 1.0)
    write(station_end, encode_websocket_frame(
        vitals_message(station.bed_text(b) for b in (1, 2))), t)
    t += rng.uniform(0.01, 0.03)
    wire.run(t)
    command = json.dumps({"type": "subscribe", "beds": [subscribe_to]})
    write(client, encode_websocket_frame(command, mask=rng.randbytes(4)), t)
    t += rng.uniform(0.005, 0.015)
    wire.run(t)
    answer = encode({"type": "subscribed", "waves": [], "beds": [subscribe_to], "stats": None})
    write(station_end, encode_websocket_frame(answer), t)
    t += rng.uniform(0.005, 0.05)
    wire.run(t)
    write(station_end, encode_websocket_frame(vitals_message([station.bed_text(subscribe_to)])),
          t)
    t += rng.uniform(0.003, 0.01)
    wire.run(t)
    write(client, encode_websocket_frame(close_payload(1000, "dashboard closed"), opcode=0x8,
                                         mask=rng.randbytes(4)), t)
    t += rng.uniform(0.005, 0.012)
    wire.run(t)
    write(station_end, encode_websocket_frame(close_payload(1000), opcode=0x8), t)
    t += rng.uniform(0.0003, 0.001)
    wire.run(t)
    station_end.close(t)  # the server closes the TCP connection after the close handshake
    client.on_fin = lambda now: wire.at(now + rng.uniform(0.002, 0.005), client.close)
    wire.run(t + 0.1)
    return wire.packets
