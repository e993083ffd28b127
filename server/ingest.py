"""UDP telemetry ingest: datagrams in, bed state and reception statistics updated.

A datagram that does not decode is counted by reason and logged (rate-limited); it never reaches
the beds and never stops the endpoint.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable

from vitalsim.clock import Clock
from vitalsim.protocol import NumericsMessage, TelemetryError, WaveMessage, decode

from .beds import BedRegistry

log = logging.getLogger("server.ingest")


class TelemetryIngest(asyncio.DatagramProtocol):
    def __init__(self, beds: BedRegistry, clock: Clock, *,
                 keys: dict[int, bytes] | None = None, require_tag: bool = False,
                 on_numerics: Callable[[int], None] | None = None) -> None:
        self.beds = beds
        self.clock = clock
        self.keys = keys
        self.require_tag = require_tag
        self.on_numerics = on_numerics
        self.received = 0
        self.bytes = 0
        self.rejected: Counter[str] = Counter()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

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

    def counters(self) -> dict:
        return {"received": self.received, "bytes": self.bytes,
                "rejected": dict(self.rejected), "rejected_total": sum(self.rejected.values())}
