"""The course's :func:`wait_until`: the one polling loop with a deadline, from the ground floor
(:mod:`vitalsim.waiting`), under the name the labs and the tests import."""

from vitalsim.waiting import wait_until

__all__ = ["wait_until"]
