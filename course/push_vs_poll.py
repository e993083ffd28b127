"""Push against polling, measured on a running station: the figures of Lab 03.

A WebSocket client and HTTP pollers watch the same station over the same seconds. Each logs every
*new* value it learns of (a bed's numerics with a send time it has not seen before) with the
device's send time and its own arrival time, and counts every byte both ways, the handshake and
HTTP headers included: what a screen that polls really pays for the freshness it gets.

The clients are plain sockets (:class:`course.websocket.RawWebSocket`, and HTTP/1.1 on
asyncio streams) because a library client would hide the bytes being counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time

import pandas as pd

from course.websocket import RawWebSocket

ARRIVAL_COLUMNS = ["method", "bed", "sent_at", "received_at"]
PUSH = "push (WebSocket)"


def poll_method(interval: float) -> str:
    return f"poll every {interval:g} s"


def _new_values(seen: dict[int, float], beds: list[dict], method: str, now: float,
                rows: list[dict], *, record: bool = True) -> None:
    for bed in beds:
        sent_at = bed.get("sent_at")
        if sent_at is None or seen.get(bed["bed"]) == sent_at:
            continue  # no numerics yet, or the same value again (stale flag, alarm link...)
        seen[bed["bed"]] = sent_at
        if record:
            rows.append({"method": method, "bed": bed["bed"], "sent_at": sent_at,
                         "received_at": now})


async def watch_push(host: str, port: int, seconds: float) -> tuple[list[dict], dict]:
    """Listen on ``/ws`` for ``seconds``: (new values, traffic). The snapshot only sets where
    each bed starts; the values it holds are old news, not arrivals."""
    rows: list[dict] = []
    seen: dict[int, float] = {}
    messages = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    ws = await RawWebSocket.connect(host, port)

    async def listen() -> None:
        nonlocal messages
        while True:  # until the watch is over: the station pushes when it has news
            frame = await ws.read_frame()
            now = time.time()
            messages += 1
            if frame.opcode != 0x1:
                continue
            message = json.loads(frame.payload)
            if message["type"] in ("snapshot", "vitals"):
                _new_values(seen, message["beds"], PUSH, now, rows,
                            record=message["type"] == "vitals")
    try:
        with contextlib.suppress(TimeoutError):  # the watch ends with the seconds
            await asyncio.wait_for(listen(), max(0.0, end - loop.time()))
    finally:
        ws.close()
    return rows, {"method": PUSH, "screens": 1, "messages": messages,
                  "bytes": ws.bytes_sent + ws.bytes_received, "seconds": seconds}


async def watch_polling(host: str, port: int, interval: float, seconds: float, *,
                        phase: float = 0.0) -> tuple[list[dict], dict]:
    """``GET /api/beds`` every ``interval`` seconds, starting ``phase`` seconds late and
    stopping ``seconds`` after the call, on one keep-alive connection: (new values, traffic).
    The first answer sets where each bed starts."""
    method = poll_method(interval)
    rows: list[dict] = []
    seen: dict[int, float] = {}
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    await asyncio.sleep(phase)
    start = loop.time()
    # a fixed schedule, so that a slow answer does not shift the rest: one poll every
    # ``interval`` from ``start`` until the watch ends
    polls = max(0, math.ceil((end - start) / interval))
    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET /api/beds HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    requests = total = 0
    try:
        for poll in range(polls):
            await asyncio.sleep(max(0.0, start + poll * interval - loop.time()))
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            body = await reader.readexactly(length)
            now = time.time()
            _new_values(seen, json.loads(body)["beds"], method, now, rows, record=requests > 0)
            requests += 1
            total += len(request) + len(head) + length
    finally:
        writer.close()
        await writer.wait_closed()
    return rows, {"method": method, "screens": 1, "messages": requests, "bytes": total,
                  "seconds": seconds}


async def push_versus_polling(host: str, port: int, *, seconds: float = 4.0,
                              intervals: tuple[float, ...] = (1.0, 0.1), screens: int = 4,
                              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run a push client, and ``screens`` pollers per interval, side by side for ``seconds``.

    The devices send on a steady beat, so one poller meets them at one fixed phase: its latency
    would be the luck of when it started, anywhere from nothing to a whole interval. The pollers
    of one interval therefore start evenly spread over it, like the many screens of a ward, each
    at its own phase. (Push needs one client: every client gets the same coalesced ticks.)

    Returns ``(arrivals, traffic)``: arrivals has one row per new value per screen
    (``method, bed, sent_at, received_at``, seconds since 1970); traffic one row per method
    (``screens``; ``messages`` received or requests made and ``bytes`` both ways, summed over
    its screens; ``seconds``), indexed by method.
    """
    results = await asyncio.gather(
        watch_push(host, port, seconds),
        *(watch_polling(host, port, interval, seconds, phase=interval * k / screens)
          for interval in intervals for k in range(screens)))
    arrivals = pd.DataFrame([row for rows, _ in results for row in rows], columns=ARRIVAL_COLUMNS)
    traffic = (pd.DataFrame([t for _, t in results])
               .groupby("method", sort=False)
               .agg(screens=("screens", "sum"), messages=("messages", "sum"),
                    bytes=("bytes", "sum"), seconds=("seconds", "first")))
    return arrivals, traffic


def summarize(arrivals: pd.DataFrame, traffic: pd.DataFrame) -> pd.DataFrame:
    """One row per method, in the order of ``traffic``: ``new_values`` (over all its screens),
    ``median_latency_ms`` and ``max_latency_ms`` (send to arrival), ``bytes_per_s`` (for one
    screen), and ``bytes_per_value`` (what each new value cost on the wire)."""
    latency_ms = (arrivals["received_at"] - arrivals["sent_at"]) * 1000
    by_method = latency_ms.groupby(arrivals["method"])
    out = pd.DataFrame(index=traffic.index)
    out["new_values"] = by_method.size().reindex(traffic.index, fill_value=0)
    out["median_latency_ms"] = by_method.median().reindex(traffic.index)
    out["max_latency_ms"] = by_method.max().reindex(traffic.index)
    out["bytes_per_s"] = traffic["bytes"] / traffic["seconds"] / traffic["screens"]
    out["bytes_per_value"] = traffic["bytes"] / out["new_values"]
    return out
