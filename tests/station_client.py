"""A station under test and the clients that talk to its boundary, shared by the boundary,
fault and fuzz tests: datagrams packed by hand (so that values the codec would never encode get
through), raw alarm connections, GETs whatever their status, and JSON parsed as a browser would."""

import asyncio
import contextlib
import json
import math
import socket
import time
from collections.abc import AsyncIterator

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from server import Station, StationConfig
from vitalsim.protocol.alarm_channel import AlarmMessage, FrameDecoder, Hello, encode_alarm_frame
from vitalsim.protocol.telemetry import HEADER, MAGIC, NUMERICS_BODY, VERSION, NumericsMessage

WARD = {1001: 1, 1002: 2}  # device id -> bed: the provisioned devices


@contextlib.asynccontextmanager
async def running(st: Station) -> AsyncIterator[Station]:
    """A started station, stopped again however the test ends."""
    await st.start()
    try:
        yield st
    finally:
        await st.stop()


def station(**kw) -> Station:
    return Station(StationConfig(http_port=0, udp_port=0, tcp_port=0, devices=dict(WARD), **kw))


def numerics(seq: int, *, device_id: int = 1001, bed: int = 1, hr: float = 72.0,
             spo2: float = 97.0, sent_at: float | None = None,
             boot_id: int = 0) -> NumericsMessage:
    return NumericsMessage(device_id, bed, seq, time.time() if sent_at is None else sent_at, 0,
                           hr, spo2, 14.0, 36.8, boot_id=boot_id)


def raw_numerics(seq: int, values: tuple, *, sent_at: float, device_id: int = 1001,
                 bed: int = 1, boot_id: int = 0) -> bytes:
    """A datagram packed by hand, so that values the codec would not encode (inf) get through.
    ``values`` are the first eight (hr .. nibp_time); version 3's fields follow as "not
    available" unless given too."""
    if len(values) == 8:
        values = (*values, *[math.nan] * 5, 0, 255)
    body = NUMERICS_BODY.pack(*values)
    return HEADER.pack(MAGIC, VERSION, 1, 0, 0, bed, device_id, seq, round(sent_at * 1e6),
                       boot_id, len(body)) + body


class Udp:
    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, ("127.0.0.1", self.port))

    def close(self) -> None:
        self.sock.close()

    async def __aenter__(self) -> "Udp":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


async def get(st: Station, path: str) -> tuple[int, dict, dict]:
    """(status, JSON body, headers) of a GET, whatever the status; the body must be JSON."""
    try:
        resp = await AsyncHTTPClient().fetch(st.url + path)
    except HTTPClientError as exc:
        resp = exc.response
    return resp.code, json.loads(resp.body), dict(resp.headers)


async def alarm_connection(st: Station, device_id: int = 1001, bed: int = 1):
    r, w = await asyncio.open_connection("127.0.0.1", st.tcp_port)
    w.write(encode_alarm_frame(Hello(device_id, bed)))
    await w.drain()
    return r, w


async def frames_until_closed(reader: asyncio.StreamReader) -> list:
    """Every frame the station sends until it closes the connection (bounded in time)."""
    decoder, out = FrameDecoder(), []
    while True:
        data = await asyncio.wait_for(reader.read(65536), 10)
        if not data:
            return out
        out += decoder.feed(data)


def alarm(n: int, **kw) -> AlarmMessage:
    fields = dict(alarm_id=f"1001-77-{n}", device_id=1001, bed=1, condition="SpO2 LOW",
                  priority="high", state="raised", value=84.0, limit=90.0,
                  timestamp=time.time())
    fields.update(kw)
    return AlarmMessage(**fields)


def strict(text: str | bytes) -> object:
    """Parse JSON as a browser would: NaN and Infinity are not JSON."""
    def refuse(token: str) -> None:
        raise ValueError(f"{token} is not JSON")
    return json.loads(text, parse_constant=refuse)


def rss_bytes() -> int:
    """This process's resident memory, from the kernel (tracemalloc would slow the station
    enough for the kernel to drop the flood, which is not what is being measured)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")
