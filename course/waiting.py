"""The course's waits with a deadline: the one polling loop in its two forms, from the ground
floor (:mod:`vitalsim.waiting`), under the names the labs and the tests import."""

from vitalsim.waiting import wait_until, wait_until_blocking

__all__ = ["wait_until", "wait_until_blocking"]
