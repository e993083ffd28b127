"""Python's cyclic garbage collector, kept from stalling the station's event loop.

CPython's collector stops the whole interpreter while it walks a generation. Its oldest
generation holds every long-lived object: a ward of thousands of beds is a few hundred thousand
of them (each bed's state, statistics, history and chart), and one full collection of a ward of
8,000 beds took 80-140 ms on the loop, every second or two under load, while each bed's newest
reading, replacing the last one every second, pushed the collector's count of new long-lived
objects past its trigger (a quarter of the generation). Datagrams waited in the kernel and
dashboards waited for their updates for as long.

The beds are never freed while the station runs, so walking them finds nothing. When the ward
has reached ``min_beds`` beds, and again each time it has grown by an eighth since,
:class:`GcPauses` collects the young generations (a few milliseconds, so that young garbage is
not kept) and then *freezes* what is alive (``gc.freeze()``): a full collection then walks only
what was made since, which is each bed's newest reading. A ward smaller than ``min_beds`` (every
lab's) is never frozen: its full collections take a few milliseconds anyway.

``gc.freeze()`` is the interpreter's, not the station's: it freezes every object alive in the
process, and cyclic garbage already old at a freeze is kept until the thaw. So the freezes
happen only as a large ward grows (at most once a second, about thirty times from 256 to 8,000
beds), and the station thaws when it stops (``gc.unfreeze()``) and collects in full there
(a stop may take a full collection; a running ward may not), so that a process that starts and
stops stations keeps nothing of the ones it stopped. Two large stations in one process share
the one frozen generation: the first to stop thaws the other's beds, whose full collections walk
them again until its ward next grows by an eighth.

It also records every collection's pause (``gc.callbacks``), so that ``/api/stats`` can tell a
stall the collector made from one the station's own code did.
"""

from __future__ import annotations

import gc
import time


class GcPauses:
    """One per station: the freeze policy above, and the collector's pauses since
    :meth:`reset`. ``freeze`` False only measures."""

    #: the ward's growth, as a fraction of its size at the last freeze, that freezes again
    GROWTH = 1 / 8

    def __init__(self, *, freeze: bool = True, min_beds: int = 256) -> None:
        self.freeze = freeze
        self.min_beds = min_beds
        self.frozen_at_beds = 0  # the ward's size at the last freeze
        self.freezes = 0
        self.frozen = 0  # objects frozen at the last freeze (counting them walks the list)
        self.collections = [0, 0, 0]  # per generation, since reset
        self.max_pause = [0.0, 0.0, 0.0]  # seconds, per generation, since reset
        self._began: float | None = None
        self._started = False

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        self._started = True

    def stop(self) -> None:
        """Stop measuring; thaw what this station froze (a full collection may then follow,
        as it would have without the freeze)."""
        if self._started:
            gc.callbacks.remove(self._on_gc)
            self._started = False
        if self.freezes:
            gc.unfreeze()
            gc.collect()  # what the freezes kept of the garbage, and the ward's own, now
            self.freezes = self.frozen = 0
            self.frozen_at_beds = 0

    def ward_size(self, beds: int) -> None:
        """The station's housekeeping, once a second: freeze the heap if the ward has reached
        ``min_beds``, and again once it has grown by :attr:`GROWTH` since the last freeze."""
        if not self.freeze or beds < self.min_beds:
            return
        if self.freezes and beds < self.frozen_at_beds * (1 + self.GROWTH):
            return
        gc.collect(1)
        gc.freeze()
        self.frozen = gc.get_freeze_count()
        self.freezes += 1
        self.frozen_at_beds = beds

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        began, self._began = self._began, None
        if began is None:
            return
        generation = info.get("generation", 2)
        pause = time.perf_counter() - began
        self.collections[generation] += 1
        if pause > self.max_pause[generation]:
            self.max_pause[generation] = pause

    def reset(self) -> None:
        self.collections = [0, 0, 0]
        self.max_pause = [0.0, 0.0, 0.0]

    def counters(self) -> dict:
        """For ``/api/stats``: collections and the longest pause (ms) per generation, and how
        many objects this station's last freeze held (counting the frozen generation now would
        walk it)."""
        return {"collections": list(self.collections),
                "max_pause_ms": [round(1000 * p, 3) for p in self.max_pause],
                "frozen_objects": self.frozen, "freezes": self.freezes}
