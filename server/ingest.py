"""UDP telemetry ingest: datagrams in, bed state and reception statistics updated.

A datagram that does not decode is counted by reason and logged (rate-limited); it never reaches
the beds and never stops the endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter
from collections.abc import Callable

from vitalsim.clock import Clock
from vitalsim.protocol import NumericsMessage, TelemetryError, WaveMessage, decode

from .beds import BedRegistry

log = logging.getLogger("server.ingest")

#: bytes read per datagram: more than any telemetry datagram (MAX_DATAGRAM, 1200), so that a
#: larger one arrives whole and is rejected for its length rather than cut short
MAX_RECEIVE = 65536


class TelemetryIngest(asyncio.DatagramProtocol):
    def __init__(self, beds: BedRegistry, clock: Clock, *,
                 keys: dict[int, bytes] | None = None, require_tag: bool = False,
                 on_numerics: Callable[[int], None] | None = None,
                 on_wave: Callable[[WaveMessage], None] | None = None) -> None:
        self.beds = beds
        self.clock = clock
        self.keys = keys
        self.require_tag = require_tag
        self.on_numerics = on_numerics
        self.on_wave = on_wave  # only the naive design (coalesce=False) pushes each chunk
        self.received = 0
        self.bytes = 0
        self.rejected: Counter[str] = Counter()
        self.transport: asyncio.DatagramTransport | None = None
        self._buffer = memoryview(bytearray(MAX_RECEIVE))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def read_from(self, sock: socket.socket, budget: int = 256) -> None:
        """Read every datagram waiting on ``sock``, at most ``budget``, in one go.

        The station calls this when its event loop says the socket is readable. asyncio's own
        datagram transport reads one datagram per turn of the loop, and each turn costs more
        than the datagram's decoding; under load, many are waiting, so one turn takes a burst.
        The budget keeps a flood from starving the loop's other work (timers, dashboards)."""
        # into one reused buffer, then a copy of just the datagram: recvfrom(MAX_RECEIVE)
        # would allocate MAX_RECEIVE bytes for every datagram before shrinking them
        buffer = self._buffer
        recvfrom_into = sock.recvfrom_into
        receive = self.datagram_received
        for _ in range(budget):
            try:
                size, addr = recvfrom_into(buffer)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. an ICMP error queued on the socket: keep serving
                log.debug("telemetry socket: %r", exc)
                return
            receive(buffer[:size].tobytes(), addr)

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        now = self.clock.now()
        self.bytes += len(data)
        try:
            msg = decode(data, keys=self.keys, require_tag=self.require_tag)
        except TelemetryError as exc:
            self.rejected[exc.reason] += 1
            total = sum(self.rejected.values())
            if total <= 10 or total % 1000 == 0:
                log.warning("rejected datagram #%d from %s:%s: %s", total, addr[0], addr[1], exc)
            return
        self.received += 1
        bed = self.beds.get(msg.bed, msg.device_id)
        bed.stats.observe(msg.seq, msg.sent_at, now)
        if isinstance(msg, NumericsMessage):
            bed.update(msg, now)
            if self.on_numerics is not None:
                self.on_numerics(msg.bed)
        elif isinstance(msg, WaveMessage):
            bed.add_wave(msg)
            if self.on_wave is not None:
                self.on_wave(msg)

    def counters(self) -> dict:
        return {"received": self.received, "bytes": self.bytes,
                "rejected": dict(self.rejected), "rejected_total": sum(self.rejected.values())}
