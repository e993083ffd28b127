"""How late the station's event loop runs what it is asked to run: its *loop lag*.

Everything the station does (reading datagrams, journaling alarms, pushing to dashboards) runs
on one event loop. A callback that keeps the loop for 50 ms holds every other one up by as much:
datagrams wait in the kernel's receive buffer (and are dropped once it is full), dashboards wait
for their updates. Average CPU hides that; the lag of a timer shows it. The monitor asks to be
woken every ``interval`` seconds and records how late each wake-up came.
"""

from __future__ import annotations

import asyncio
from array import array


class LoopLag:
    """Records the lateness of a timer on the running loop: max and p99 since :meth:`reset`.

    One object per station (never module state), started and stopped with it. Lags go into a
    histogram of ``resolution``-wide bins up to ``ceiling`` seconds (beyond, only the max says
    how late): recording is O(1), and a p99 asked for once a second walks a fixed number of
    bins, whatever the length of the run."""

    def __init__(self, interval: float = 0.01, *, resolution: float = 0.0005,
                 ceiling: float = 1.0) -> None:
        self.interval = interval
        self.resolution = resolution
        self._bins = array("q", [0]) * (int(ceiling / resolution) + 1)  # the last: beyond
        self.max = 0.0
        self.count = 0
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._due = self._loop.time() + self.interval
        self._handle = self._loop.call_at(self._due, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        self.record(max(now - self._due, 0.0))
        # the next wake-up is due one interval from now: a stall is counted once, not once
        # per interval it swallowed
        self._due = now + self.interval
        self._handle = self._loop.call_at(self._due, self._tick)

    def record(self, lag: float) -> None:
        """One wake-up that came ``lag`` seconds late."""
        self.count += 1
        self.max = max(self.max, lag)
        self._bins[min(int(lag / self.resolution), len(self._bins) - 1)] += 1

    def reset(self) -> None:
        """Start a new measuring period (the benchmark does at the start of each point)."""
        for i in range(len(self._bins)):
            self._bins[i] = 0
        self.max = 0.0
        self.count = 0

    def p99(self) -> float:
        """The lag that 99 % of wake-ups did not exceed (to ``resolution``; never above max)."""
        if not self.count:
            return 0.0
        rank, seen = 0.99 * self.count, 0
        for i, n in enumerate(self._bins):
            seen += n
            if seen >= rank:
                return min((i + 1) * self.resolution, self.max)
        return self.max

    def counters(self) -> dict:
        """For ``/api/stats``: milliseconds, since the station started or the last reset."""
        return {"interval_ms": round(1000 * self.interval, 3), "samples": self.count,
                "lag_max_ms": round(1000 * self.max, 3),
                "lag_p99_ms": round(1000 * self.p99(), 3)}
