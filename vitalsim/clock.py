"""Clocks: where protocol and physiology code gets "now" from.

Every piece of logic in vitalsim takes time as an argument, or from one of these objects, and
never reads the system clock itself. Real time is used only at the edges (sockets, the dashboard);
tests and labs use a :class:`VirtualClock` so that an hour of a scenario runs in well under a
second and retransmission timers fire deterministically.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Anything that can tell the time in seconds (a float, epoch-based for wall clocks)."""

    def now(self) -> float: ...


class WallClock:
    """Real time: seconds since the Unix epoch, so that timestamps compare across processes."""

    def now(self) -> float:
        return time.time()


class VirtualClock:
    """Time that moves only when told to, for deterministic tests and labs."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (never backwards) and return the new time."""
        if seconds < 0:
            raise ValueError(f"a virtual clock only moves forward; got advance({seconds!r})")
        self._now += seconds
        return self._now

    def set(self, t: float) -> None:
        """Jump to time ``t``, which must not be earlier than now."""
        if t < self._now:
            raise ValueError(f"a virtual clock only moves forward; now={self._now}, asked for {t}")
        self._now = float(t)
