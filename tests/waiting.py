"""Waiting on conditions with a deadline, never sleeping and hoping: the tests wait the way the
labs do, with :func:`vitalsim.labkit.wait_until` (TimeoutError naming what never happened)."""

from vitalsim.labkit.waiting import wait_until

__all__ = ["wait_until"]
