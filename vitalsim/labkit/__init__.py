"""Helpers for the labs: named checks with expected-versus-actual feedback, and the tool that builds
the learner and instructor notebooks from one source.

Notebook cells hold the teaching; what they need to run lives here, with tests.
"""

from .checks import Check, CheckResult, Checks, not_done_yet
from .waiting import wait_until

__all__ = ["Check", "CheckResult", "Checks", "not_done_yet", "wait_until"]
