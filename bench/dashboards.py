"""Dashboard clients for the capacity benchmark: K real WebSocket clients, spread over as many
processes as the machine has cores (``bench.run``), so that parsing what the station sends does
not saturate one process before the station is.

Each subscribes to the overview (every bed's vitals), to a few beds' waveforms (none in the
numerics workload) and to no bed's statistics (the stats message then carries the station's
totals only, as a dashboard of thousands of beds would ask; the course's dashboard asks for
every bed's, which the station computes a few beds per tick), and records
for every update the time from the device's send stamp to its own receipt: a new reading of a
bed in a ``vitals`` message (a bed repeated with the same reading, as after a resync, is not an
update), and every chunk of a ``wave`` message. Device and dashboards share this machine's clock.
"""

from __future__ import annotations

import asyncio
import json
import time
from multiprocessing.connection import Connection

import numpy as np
from tornado.websocket import WebSocketClientConnection, websocket_connect

from .procs import cpu_seconds, receive


class Dashboard:
    def __init__(self, url: str, waves: list[int]) -> None:
        self.url = url
        self.waves = waves
        self.ws: WebSocketClientConnection | None = None
        self.last_reading: dict[int, float] = {}
        # (device send time, latency) of every update; filtered to the window at the end
        self.vitals: list[tuple[float, float]] = []
        self.wave: list[tuple[float, float]] = []
        self.messages: dict[str, int] = {}
        self.bytes = 0
        self.closed = False
        self._task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self.ws = await websocket_connect(self.url, max_message_size=64 << 20)
        self.ws.write_message(json.dumps({"type": "subscribe", "waves": self.waves,
                                          "beds": None, "stats": []}))
        while True:  # the snapshot, then the station's answer to the subscription
            raw = await self.ws.read_message()
            if raw is None:
                raise ConnectionError("the station closed the WebSocket before subscribing")
            if json.loads(raw)["type"] == "subscribed":
                break
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        while True:
            raw = await self.ws.read_message()
            now = time.time()
            if raw is None:
                self.closed = True
                return
            self.bytes += len(raw)
            msg = json.loads(raw)
            kind = msg["type"]
            self.messages[kind] = self.messages.get(kind, 0) + 1
            if kind == "vitals":
                for bed in msg["beds"]:
                    sent = bed["sent_at"]
                    if sent is not None and sent > self.last_reading.get(bed["bed"], 0.0):
                        self.last_reading[bed["bed"]] = sent
                        self.vitals.append((sent, now - sent))
            elif kind == "wave":
                for chunk in msg["chunks"]:
                    self.wave.append((chunk["sent_at"], now - chunk["sent_at"]))

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.ws is not None:
            self.ws.close()


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    p50, p99 = np.percentile(np.asarray(values), (50, 99))
    return {"p50_ms": 1000 * float(p50), "p99_ms": 1000 * float(p99),
            "max_ms": 1000 * max(values)}


def window(dashboards: list[Dashboard], since: float, until: float) -> dict:
    """What these dashboards recorded of the updates whose device send time falls in
    [since, until]: every latency (seconds) and the counts, to be merged with other processes'
    by :func:`merge`."""
    def within(rows: list[tuple[float, float]]) -> list[float]:
        return [lat for sent, lat in rows if since <= sent <= until]

    messages: dict[str, int] = {}
    for d in dashboards:
        for kind, n in d.messages.items():
            messages[kind] = messages.get(kind, 0) + n
    return {"vitals": [x for d in dashboards for x in within(d.vitals)],
            "wave": [x for d in dashboards for x in within(d.wave)],
            "messages": messages, "bytes": sum(d.bytes for d in dashboards),
            "closed": sum(d.closed for d in dashboards)}


def merge(parts: list[dict]) -> dict:
    """The latencies and counts of every dashboards process (each part a :func:`window`), as
    one set of dashboards."""
    vitals = [x for p in parts for x in p["vitals"]]
    wave = [x for p in parts for x in p["wave"]]
    messages: dict[str, int] = {}
    for part in parts:
        for kind, n in part["messages"].items():
            messages[kind] = messages.get(kind, 0) + n
    return {"updates": len(vitals) + len(wave), "vitals_updates": len(vitals),
            "wave_updates": len(wave), **_percentiles(vitals + wave),
            "vitals": _percentiles(vitals), "wave": _percentiles(wave),
            "messages": messages, "bytes": sum(p["bytes"] for p in parts),
            "closed": sum(p["closed"] for p in parts),
            # each process's own CPU, added: together they are what the dashboards cost
            "cpu_percent": sum(p.get("cpu_percent", 0.0) for p in parts),
            "processes": len(parts)}


def dashboards_main(conn: Connection) -> None:
    """Child process: answers ``init``, ``settle``, ``report`` and ``stop``."""
    asyncio.run(_dashboards(conn))


async def _dashboards(conn: Connection) -> None:
    dashboards: list[Dashboard] = []
    try:
        while True:
            command, args = await receive(conn)
            try:
                if command == "init":
                    beds, per = args["beds"], args.get("waves_per_client", 4)
                    first = args.get("first", 0)  # this process's first dashboard, of all K
                    for k in range(first, first + args["clients"]):
                        waves = sorted({(k * per + j) % beds + 1 for j in range(per)}) \
                            if per else []
                        dashboards.append(Dashboard(args["url"], waves))
                    await asyncio.gather(*(d.connect() for d in dashboards))
                    mark = (time.monotonic(), cpu_seconds())
                    conn.send({"clients": len(dashboards)})
                elif command == "report":
                    # let what is in flight arrive: stop when nothing came for `quiet` seconds
                    deadline = time.monotonic() + args.get("timeout_s", 3.0)
                    quiet = args.get("quiet", 0.3)
                    last = -1
                    while time.monotonic() < deadline:
                        total = sum(d.bytes for d in dashboards)
                        if total == last:
                            break
                        last = total
                        await asyncio.sleep(quiet)
                    # this process's own CPU: all K dashboards share it, and when it is
                    # saturated, latency grows here rather than in the station
                    wall = time.monotonic() - mark[0]
                    conn.send({**window(dashboards, args["since"], args["until"]),
                               "cpu_percent": 100 * (cpu_seconds() - mark[1]) / wall})
                elif command == "stop":
                    conn.send({})
                    return
                else:
                    conn.send({"error": f"unknown command {command!r}"})
            except Exception as exc:
                conn.send({"error": f"{command}: {exc!r}"})
                return
    finally:
        for d in dashboards:
            d.close()
