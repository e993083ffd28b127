"""What many test files share, in one module (no test file imports another test file).

Tests wait the way the labs do, with :func:`course.wait_until` (TimeoutError naming what never
happened), never sleeping and hoping.
"""

import asyncio
import json

from tornado.httpclient import AsyncHTTPClient

from course.waiting import wait_until
from server import Station, StationConfig
from server.config import ward_devices
from vitalsim.clock import VirtualClock
from vitalsim.protocol import NumericsMessage

__all__ = ["get_json", "next_message", "run", "wait_until"]


def run(coro):
    """Run a test's coroutine on a fresh event loop, with a deadline so a hang fails, not stalls."""
    return asyncio.run(asyncio.wait_for(coro, timeout=60))


async def get_json(url: str) -> dict:
    resp = await AsyncHTTPClient().fetch(url)
    return json.loads(resp.body)


async def next_message(ws, kind: str, timeout: float = 10.0) -> dict:
    """The next WebSocket message of type ``kind`` from the station, skipping the others."""
    async def loop():
        while True:
            raw = await ws.read_message()
            assert raw is not None, "the station closed the WebSocket"
            msg = json.loads(raw)
            if msg["type"] == kind:
                return msg
    return await asyncio.wait_for(loop(), timeout)


def ward_station(clock: VirtualClock, beds: int = 4000, **kw) -> Station:
    """A station (not started: no sockets) whose ward of ``beds`` beds has each been heard."""
    station = Station(StationConfig(http_port=0, udp_port=0, tcp_port=0,
                                    devices=ward_devices(beds), max_beds=beds, **kw),
                      clock=clock)
    for bed in range(1, beds + 1):
        state = station.beds.get(bed, 1000 + bed)
        assert state is not None
        state.update(NumericsMessage(1000 + bed, bed, 0, clock.now(), 0, 72.0, 97.0, 14.0,
                                     36.8), clock.now())
        state.stats.observe(0, clock.now(), clock.now())
    return station
