"""Reception statistics for one device's telemetry, sans-I/O.

Fed with (sequence number, send time, receive time) per datagram, it measures what UDP does not
tell: loss, duplicates, reordering, one-way latency and RFC 3550 interarrival jitter.
"""

from __future__ import annotations

import math
from array import array

import numpy as np

from .replay import ReplayWindow

SEQ_MOD = 2**32
_HALF = SEQ_MOD // 2
_NEVER = -(2**62)  # below any extended sequence number


def _empty_ring(size: int) -> array:
    return array("q", [_NEVER]) * size


def _percentiles(values: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """What ``np.percentile(values, qs)`` gives (its default, linear method, to the last bit),
    from one partial sort around the few ranks needed: a station asks this of every bed every
    second, and numpy's general path costs three times as much."""
    n = len(values)
    ranks = []
    for q in qs:
        virtual = (q / 100) * (n - 1)
        low = math.floor(virtual)
        ranks.append((virtual - low, low, min(low + 1, n - 1)))
    part = np.partition(values, sorted({r for _, low, high in ranks for r in (low, high)}))
    out = []
    for gamma, low, high in ranks:
        a, b = float(part[low]), float(part[high])
        diff = b - a
        out.append(b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma)
    return out


class ReceiverStats:
    """Per-device tracker. Sequence numbers are u32 and may wrap; a device that restarts starts
    a new run of counting rather than a burst of "reordering". A restart is known from the
    datagram's boot id (telemetry version 2: a newer boot id is a new run of the device, see
    :meth:`judge`), or, for a device that sends boot id 0 throughout, from its sequence number
    jumping far back."""

    def __init__(self, *, window: int = 1024, latency_window: int = 2048,
                 late_after: float = 0.5, max_ahead: int = 256,
                 anti_replay: bool = True) -> None:
        self.max_ahead = max_ahead  # how far ahead of the highest a new number may jump
        self.late_after = late_after  # seconds in flight after which a datagram is too late
        self.late = 0
        self.received = 0
        self.duplicates = 0
        self.reordered = 0
        self.restarts = 0
        self.jitter = 0.0  # seconds, RFC 3550 section 6.4.1
        self._highest: int | None = None  # extended highest sequence number seen
        self._base: int | None = None  # extended first sequence number of this run
        # duplicates are recognised within the last `window` sequence numbers: slot
        # ext % window holds the newest extended number seen there (8 bytes a slot, where a
        # deque and a set of int objects took about 70)
        self._seen = _empty_ring(window)
        self._window = window
        # a ring of the latest transit times, in a flat array of doubles rather than a deque
        # of float objects: a quarter of the memory, and numpy reads it without a copy
        self._latency = array("d", bytes(8 * latency_window))
        self._latency_count = 0
        self._latency_next = 0
        self._last_transit: float | None = None
        self._counted_before_restart = (0, 0)  # (expected, received) of earlier runs
        self._run_received = 0
        # which (boot id, sequence number) pairs were admitted: refuses replays, see judge
        self.replay_window = ReplayWindow(size=window * 4, max_ahead=max_ahead)
        # False only to show what the window prevents (lab 06): a replay is then admitted
        # again, as before the window existed (counted as a duplicate, stored again)
        self.anti_replay = anti_replay

    def judge(self, boot_id: int, seq: int) -> str:
        """Where does a datagram of boot ``boot_id`` stand? The verdict of the device's
        anti-replay window (:class:`~vitalsim.protocol.replay.ReplayWindow`, which see):
        ``"admit"``, ``"restart"``, ``"replay"``, ``"old_boot"``, ``"new_boot"`` or
        ``"sequence"``. A ``"restart"`` closes the current run here (its loss figures are kept,
        and the next datagram observed starts a new one, so the gap between the runs is not
        loss); a ``"replay"`` counts as a duplicate (a network's duplicate and an attacker's
        replay look the same, and neither is stored). The caller passes an admitted datagram
        (``"admit"`` or ``"restart"``) on to :meth:`observe`, and nothing else."""
        verdict = self.replay_window.judge(boot_id, seq)
        if verdict == "restart":
            self._new_run()
        elif verdict == "replay":
            if not self.anti_replay:
                return "admit"  # observe() counts it (a duplicate, or a restart if far behind)
            self.duplicates += 1
        return verdict

    @property
    def boot_id(self) -> int | None:
        """The device's current boot, once one is admitted."""
        return self.replay_window.boot_id

    def _new_run(self) -> None:
        """Close the current run: its counts join the earlier runs', and the next datagram
        observed starts a new sequence window (the gap between runs is not loss)."""
        exp, rec = self._counted_before_restart
        self._counted_before_restart = (exp + self.expected_this_run, rec + self._run_received)
        self.restarts += 1
        self._highest = None
        self._base = None
        self._seen = _empty_ring(self._window)

    def _extend(self, seq: int) -> int:
        highest = self._highest
        if highest is None:
            return seq
        # the number congruent to seq (mod 2**32) nearest the highest seen; a tie (exactly half
        # the space away) goes to the lower one
        return highest + (seq - highest + _HALF) % SEQ_MOD - _HALF

    def observe(self, seq: int, sent_at: float, received_at: float) -> str:
        """Record one datagram; returns "new", "duplicate", "reordered" or "restart".

        A datagram more than ``late_after`` seconds in flight is also counted as *late*: a
        monitor showing live vitals has no use for it, whatever its order."""
        ext = self._extend(seq)
        kind = "new"
        if self._highest is not None and ext < self._highest - self._window * 4:
            # far behind everything seen: the device restarted and counts from scratch
            self._new_run()
            ext = seq
            kind = "restart"
        seen, slot = self._seen, ext % self._window
        held = seen[slot]
        if held == ext:
            self.duplicates += 1
            return "duplicate"
        if ext > held:  # an old straggler never evicts a newer number from its slot
            seen[slot] = ext
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
        ring, i = self._latency, self._latency_next
        ring[i] = transit
        self._latency_next = 0 if i + 1 == len(ring) else i + 1
        if self._latency_count < len(ring):
            self._latency_count += 1
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
        if not self._latency_count:
            return {f"p{q:g}": None for q in qs}
        # the ring fills from slot 0, so its first `count` slots are the window
        window = np.frombuffer(self._latency, dtype=np.float64, count=self._latency_count)
        return {f"p{q:g}": v for q, v in zip(qs, _percentiles(window, qs), strict=True)}

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
