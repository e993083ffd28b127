"""What the load generator aims at, each in its own process: the station, or a bare receiver.

The bare receiver is the ceiling: an asyncio datagram endpoint whose callback only counts. No
Python program on this machine takes datagrams in faster through asyncio, so the station's own
rate is reported as a fraction of it, both measured in the same run with the same generator and
the same socket receive buffer.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

from server.config import StationConfig, ward_devices

from .procs import cpu_seconds, memory, receive, use_loop

#: what the benchmark must set differently from ``python -m server``'s defaults, and why; the
#: benchmark prints each beside its results (bench.run.config_differences)
BENCH_OVERRIDES = {
    "http_port": "ephemeral ports, so that runs never collide",
    "udp_port": "ephemeral ports",
    "tcp_port": "ephemeral ports",
    "journal_path": "a journal file in a temporary directory (or :memory: with --journal memory)",
    "devices": "the load generator's beds are provisioned (devices 1000 + bed)",
    "max_beds": "room for the sweep's largest ward",
    "operators": "no dashboard sessions: the benchmark's dashboards connect without logging in, "
                 "as a latest-value broadcast server's clients do",
}


def station_config(options: dict, journal: str | Path = ":memory:") -> StationConfig:
    """The station a benchmark point runs: ``python -m server``'s defaults, except the settings
    in :data:`BENCH_OVERRIDES` and what ``options["station"]`` changes (the naive design's
    ``coalesce=False``), both printed beside the results."""
    most = options.get("max_beds", 8192)
    return StationConfig(http_port=0, udp_port=0, tcp_port=0, journal_path=journal,
                         devices=ward_devices(most), max_beds=most,
                         **options.get("station", {}))


class _Counter(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received = 0

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.received += 1


class _Target:
    """The parts common to both targets: marks, CPU and memory, settling after a run."""

    def __init__(self) -> None:
        self._mark = (0.0, 0.0, 0)

    def received(self) -> int:
        raise NotImplementedError

    def steady(self) -> None:
        """The warm-up is over: what is measured only in steady state starts again here."""

    def mark(self) -> dict:
        self._mark = (time.monotonic(), cpu_seconds(), self.received())
        return {"received": self._mark[2]}

    async def report(self, settle: float = 0.2, timeout: float = 5.0) -> dict:
        """Counts since the mark, once the socket's queue has drained (the count has not moved
        for ``settle`` seconds)."""
        deadline = time.monotonic() + timeout
        last = self.received()
        while time.monotonic() < deadline:
            await asyncio.sleep(settle)
            now = self.received()
            if now == last:
                break
            last = now
        wall0, cpu0, received0 = self._mark
        wall = time.monotonic() - wall0
        return {"received": self.received() - received0, "cpu_percent":
                100 * (cpu_seconds() - cpu0) / wall if wall > 0 else 0.0, **memory()}


def _rcvbuf(sock: socket.socket) -> int:
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)


def bare_main(conn: Connection, options: dict) -> None:
    """Child process: the ceiling, a datagram receiver that only counts."""
    loop_name = use_loop(options.get("loop", "asyncio"))
    asyncio.run(_bare(conn, options, loop_name))


async def _bare(conn: Connection, options: dict, loop_name: str) -> None:
    counter = _Counter()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: counter, local_addr=("127.0.0.1", 0), family=socket.AF_INET)
    sock = transport.get_extra_info("socket")
    # the same receive buffer as the station's, so that the ceiling compares like with like
    rcvbuf = station_config(options).udp_receive_buffer
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)

    class Bare(_Target):
        def received(self) -> int:
            return counter.received

    target = Bare()
    conn.send({"udp_port": sock.getsockname()[1], "tcp_port": 0, "http_port": 0,
               "rcvbuf": _rcvbuf(sock), "loop": loop_name})
    try:
        await _serve(conn, target)
    finally:
        transport.close()


def station_main(conn: Connection, options: dict) -> None:
    """Child process: the central station, with the options the parent chose."""
    logging.basicConfig(level=logging.ERROR)
    loop_name = use_loop(options.get("loop", "asyncio"))
    asyncio.run(_station(conn, options, loop_name))


async def _station(conn: Connection, options: dict, loop_name: str) -> None:
    from server.station import Station

    with tempfile.TemporaryDirectory(prefix="vitalsim-bench-") as tmp:
        journal = Path(tmp) / "alarms.sqlite3" if options.get("journal") == "file" \
            else ":memory:"
        station = Station(station_config(options, journal))
        await station.start()
        assert station._udp is not None

        class Live(_Target):
            def received(self) -> int:
                return station.ingest.received

            def steady(self) -> None:
                station.loop_lag.reset()
                station.gc.reset()

            async def report(self, settle: float = 0.2, timeout: float = 5.0) -> dict:
                out = await super().report(settle, timeout)
                # before stats() costs its own
                out["loop_lag"] = {**station.loop_lag.counters(), "gc": station.gc.counters()}
                stats = station.stats()
                beds = stats.pop("beds")
                out.update(stats)
                out["beds_seen"] = len(beds)
                out["lost_by_sequence"] = sum(b["lost"] for b in beds.values())
                out["expected_by_sequence"] = sum(b["expected"] for b in beds.values())
                return out

        target = Live()
        conn.send({"udp_port": station.udp_port, "tcp_port": station.tcp_port,
                   "http_port": station.http_port,
                   "rcvbuf": _rcvbuf(station._udp), "loop": loop_name})
        try:
            await _serve(conn, target)
        finally:
            await station.stop()


async def _serve(conn: Connection, target: _Target) -> None:
    while True:
        command, args = await receive(conn)
        if command == "mark":
            conn.send(target.mark())
        elif command == "steady":
            target.steady()
            conn.send({})
        elif command == "report":
            conn.send(await target.report())
        elif command == "stop":
            conn.send({})
            return
        else:
            conn.send({"error": f"unknown command {command!r}"})
