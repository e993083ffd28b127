"""Waiting on conditions with a deadline, never sleeping and hoping: the tests wait the way the
labs do, with :func:`course.wait_until` (TimeoutError naming what never happened)."""

from course.waiting import wait_until

__all__ = ["wait_until"]
