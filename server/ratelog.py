"""Counting rejects by reason, and logging them without flooding the log.

UDP ingest and the TCP alarm listener share this, so both behave the same: the first reject of
each reason is always logged (the one that explains the rest), then at most ``per_interval``
lines every ``interval`` seconds across all reasons; at the end of a quiet interval one line
says how many were left out. The time is passed in, as everywhere in the station's logic.
"""

from __future__ import annotations

import logging
from collections import Counter


class RejectLog:
    """Counts rejects by reason and logs them, rate-limited; ``last_error`` keeps the newest
    message of each reason (what ``/api/stats`` and a lab can show)."""

    def __init__(self, logger: logging.Logger, what: str, *, per_interval: int = 10,
                 interval: float = 10.0, level: int = logging.WARNING,
                 source_word: str = "from") -> None:
        self.logger = logger
        self.source_word = source_word  # "from" a peer that sent it; "to" one we connect to
        self.what = what
        self.per_interval = per_interval
        self.interval = interval
        self.level = level
        self.counts: Counter[str] = Counter()
        self.last_error: dict[str, str] = {}
        self.suppressed = 0
        self._window_start = float("-inf")
        self._logged_in_window = 0

    def reject(self, reason: str, message: str, source: object, now: float) -> None:
        """Count one reject of ``reason`` from ``source`` and log it if the budget allows."""
        self.counts[reason] += 1
        self.last_error[reason] = message
        first = self.counts[reason] == 1
        if now - self._window_start >= self.interval:
            if self.suppressed:
                self.logger.log(self.level, "%s: %d more rejects not logged in the last %g s "
                                "(counts by reason: %s)", self.what, self.suppressed,
                                self.interval, dict(self.counts))
            self._window_start, self._logged_in_window, self.suppressed = now, 0, 0
        if first or self._logged_in_window < self.per_interval:
            self._logged_in_window += 1
            self.logger.log(self.level, "%s %s #%d%s %s %s: %s", self.what, reason,
                            self.counts[reason], " (the first of its reason)" if first else "",
                            self.source_word, source, message)
        else:
            self.suppressed += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())
