"""Reception statistics for one device's telemetry, sans-I/O.

Fed with (sequence number, send time, receive time) per datagram, it measures what UDP does not
tell: loss, duplicates, reordering, one-way latency and RFC 3550 interarrival jitter.
"""

from __future__ import annotations

from collections import deque

import numpy as np

SEQ_MOD = 2**32


class ReceiverStats:
    """Per-device tracker. Sequence numbers are u32 and may wrap; a device that restarts (its
    sequence jumps far back) starts a new run of counting rather than a burst of "reordering"."""

    def __init__(self, *, window: int = 1024, latency_window: int = 2048,
                 late_after: float = 0.5) -> None:
        self.late_after = late_after  # seconds in flight after which a datagram is too late
        self.late = 0
        self.received = 0
        self.duplicates = 0
        self.reordered = 0
        self.restarts = 0
        self.jitter = 0.0  # seconds, RFC 3550 section 6.4.1
        self._highest: int | None = None  # extended highest sequence number seen
        self._base: int | None = None  # extended first sequence number of this run
        self._seen: deque[int] = deque(maxlen=window)
        self._seen_set: set[int] = set()
        self._window = window
        self._latency: deque[float] = deque(maxlen=latency_window)
        self._last_transit: float | None = None
        self._counted_before_restart = (0, 0)  # (expected, received) of earlier runs
        self._run_received = 0

    def _extend(self, seq: int) -> int:
        if self._highest is None:
            return seq
        cycle = self._highest - (self._highest % SEQ_MOD)
        candidates = (cycle - SEQ_MOD + seq, cycle + seq, cycle + SEQ_MOD + seq)
        return min(candidates, key=lambda c: abs(c - self._highest))

    def observe(self, seq: int, sent_at: float, received_at: float) -> str:
        """Record one datagram; returns "new", "duplicate", "reordered" or "restart".

        A datagram more than ``late_after`` seconds in flight is also counted as *late*: a
        monitor showing live vitals has no use for it, whatever its order."""
        ext = self._extend(seq)
        kind = "new"
        if self._highest is not None and ext < self._highest - self._window * 4:
            # far behind everything seen: the device restarted and counts from scratch
            exp, rec = self._counted_before_restart
            self._counted_before_restart = (exp + self.expected_this_run, rec + self._run_received)
            self.restarts += 1
            self._highest = None
            self._seen.clear()
            self._seen_set.clear()
            ext = seq
            kind = "restart"
        if ext in self._seen_set:
            self.duplicates += 1
            return "duplicate"
        if len(self._seen) == self._seen.maxlen:
            self._seen_set.discard(self._seen[0])
        self._seen.append(ext)
        self._seen_set.add(ext)
        self.received += 1
        if self._highest is None:
            self._base = ext
            self._highest = ext
            self._run_received = 1
        else:
            self._run_received += 1
            if ext < self._highest:
                self.reordered += 1
                kind = "reordered"
            else:
                self._highest = ext
        transit = received_at - sent_at
        self._latency.append(transit)
        if transit > self.late_after:
            self.late += 1
        if self._last_transit is not None:
            self.jitter += (abs(transit - self._last_transit) - self.jitter) / 16
        self._last_transit = transit
        return kind

    @property
    def expected_this_run(self) -> int:
        if self._highest is None or self._base is None:
            return 0
        return self._highest - self._base + 1

    @property
    def expected(self) -> int:
        return self._counted_before_restart[0] + self.expected_this_run

    @property
    def lost(self) -> int:
        """Datagrams expected (from the sequence numbers) but never received."""
        received_unique = self._counted_before_restart[1] + self._run_received
        return max(self.expected - received_unique, 0)

    @property
    def loss_ratio(self) -> float:
        return self.lost / self.expected if self.expected else 0.0

    def latency_percentiles(self, qs: tuple[float, ...] = (50, 90, 99)) -> dict[str, float | None]:
        """One-way latency percentiles in seconds (None before anything arrived)."""
        if not self._latency:
            return {f"p{q:g}": None for q in qs}
        values = np.percentile(np.fromiter(self._latency, float), qs)
        return {f"p{q:g}": float(v) for q, v in zip(qs, values, strict=True)}

    def snapshot(self) -> dict[str, float | int]:
        """A JSON-friendly summary (latencies and jitter in milliseconds)."""
        lat = self.latency_percentiles()
        return {
            "received": self.received,
            "expected": self.expected,
            "lost": self.lost,
            "loss_ratio": self.loss_ratio,
            "duplicates": self.duplicates,
            "reordered": self.reordered,
            "late": self.late,
            "restarts": self.restarts,
            "jitter_ms": self.jitter * 1000,
            **{f"latency_{k}_ms": None if v is None else v * 1000 for k, v in lat.items()},
        }
