"""Bytes per bed: what one bed costs the station once its retained history is full.

Run in a fresh process: feed N beds, through the station's own ingest (real decoding, real
statistics), as many datagrams as fill every retention window (600 s of numerics, 30 s of each
waveform, the statistics' sequence and latency windows), and divide the growth of resident
memory by N.
"""

from __future__ import annotations

import gc
import struct
import time
from multiprocessing.connection import Connection

from .loadgen import _FIRST_INDEX, _FIRST_INDEX_AT, _IDENTITY, _IDENTITY_AT, build_pool
from .procs import memory


def measure(beds: int = 50) -> dict:
    from server.beds import BedRegistry
    from server.config import StationConfig
    from server.ingest import TelemetryIngest
    from vitalsim.clock import WallClock

    config = StationConfig()
    pool = build_pool()
    registry = BedRegistry(config.history_seconds, wave_chunks=config.wave_history_seconds * 4,
                           max_beds=beds)
    for bed in range(1, beds + 1):
        registry.provision(1000 + bed, bed)
    ingest = TelemetryIngest(registry, WallClock())
    addr = ("127.0.0.1", 0)
    # fill the latency window (2048 datagrams) and the history (history_seconds numerics)
    cycles_waves = -(-2048 // (pool.per_bed_second * pool.cycle))
    cycles = max(int(cycles_waves), -(-config.history_seconds // pool.cycle))
    gc.collect()
    before = memory()["rss"]
    start = time.monotonic()
    for bed in range(1, beds + 1):
        seq = 0
        events = pool.events[(bed - 1) % len(pool.events)]
        for cycle in range(int(cycles)):
            waves = cycle < cycles_waves
            for offset, item in events:
                step = pool.step[item]
                if step and not waves:
                    continue
                data = bytearray(pool.data[item])
                if step:
                    _FIRST_INDEX.pack_into(data, _FIRST_INDEX_AT,
                                           pool.first[item] + cycle * step)
                sent = 1.7e9 + cycle * pool.cycle + offset
                _IDENTITY.pack_into(data, _IDENTITY_AT, bed, 1000 + bed, seq,
                                    int(sent * 1_000_000))
                seq += 1
                ingest.datagram_received(bytes(data), addr)
    gc.collect()
    grown = memory()["rss"] - before
    state = registry.beds[1]
    return {"beds": beds, "bytes_per_bed": grown / beds, "datagrams": ingest.received,
            "seconds": time.monotonic() - start, "history": len(state.history),
            "wave_chunks": {ch: len(ring) for ch, ring in state.waves.items()},
            "latency_window": state.stats._latency_count}


def memory_main(conn: Connection, beds: int) -> None:
    """Child process: one measurement, sent to the parent."""
    try:
        conn.send(measure(beds))
    except (struct.error, ValueError, KeyError) as exc:
        conn.send({"error": repr(exc)})
