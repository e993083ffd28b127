"""Alarm limits, priorities and delays: the bedside monitor's own judgement of its numerics.

A real monitor does not alarm on one sample over a limit: a condition must persist for an *alarm
delay* before it is raised, and must be back inside the limit (with a little hysteresis) before it
clears. This module is pure: it is fed numerics and the time, and returns alarm events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .protocol.alarm_channel import AlarmMessage

#: how each parameter is named on an alarm, as a monitor labels it
LABELS = {"hr": "HR", "spo2": "SpO2", "rr": "RR", "temp": "TEMP", "nibp_sys": "NIBP SYS"}


@dataclass(frozen=True)
class Limit:
    """One alarm condition: a numeric below ``low`` or above ``high`` for ``delay`` seconds."""

    parameter: str
    low: float | None
    high: float | None
    priority: str = "medium"
    delay: float = 5.0
    hysteresis: float = 1.0

    def breach(self, value: float) -> tuple[str, float] | None:
        """("low"|"high", the limit crossed), or None when the value is inside."""
        if self.low is not None and value < self.low:
            return "low", self.low
        if self.high is not None and value > self.high:
            return "high", self.high
        return None

    def back_inside(self, value: float) -> bool:
        lo = None if self.low is None else self.low + self.hysteresis
        hi = None if self.high is None else self.high - self.hysteresis
        return (lo is None or value >= lo) and (hi is None or value <= hi)


#: an HR limit on the patients' own rate: alarms raise and clear every few seconds, a steady
#: stream of alarm traffic for exercising the alarm channel (``--alarm-storm``, the labs, tests)
FLAPPING_HR = (Limit("hr", None, 72, "medium", delay=0.0, hysteresis=0.0),)


def default_limits() -> tuple[Limit, ...]:
    """Adult default limits, of the kind a ward sets on admission."""
    return (
        Limit("hr", 40, 130, "high", delay=5.0, hysteresis=3),
        Limit("spo2", 90, None, "high", delay=10.0, hysteresis=1),
        Limit("rr", 8, 25, "medium", delay=10.0, hysteresis=1),
        Limit("temp", 35.5, 38.5, "low", delay=5.0, hysteresis=0.2),
        Limit("nibp_sys", 90, 180, "medium", delay=0.0, hysteresis=3),
    )


@dataclass
class _Condition:
    since: float | None = None  # first time seen out of limits
    active_id: str | None = None
    side: str = ""


@dataclass
class AlarmMonitor:
    """Watches numerics against limits and yields raised/cleared alarm events.

    Alarm ids are ``{device_id}-{boot_id}-{n}``: ``n`` counts from 1 in every run of the
    device, so the boot id (an epoch: the device's start time in microseconds, passed in by
    whoever starts it) is what keeps them unique across restarts, as the station's journal
    needs; without it a restarted device's first alarm would be taken for a re-send of the
    last run's and swallowed. A replay on virtual time, which nothing journals, may leave
    ``boot_id`` None for the shorter ``{device_id}-{n}``."""

    device_id: int
    bed: int
    limits: Iterable[Limit] = field(default_factory=default_limits)
    boot_id: int | None = None

    def __post_init__(self) -> None:
        self.limits = tuple(self.limits)
        self._conditions = {lim.parameter: _Condition() for lim in self.limits}
        self._counter = 0

    def _next_id(self) -> str:
        self._counter += 1
        if self.boot_id is None:
            return f"{self.device_id}-{self._counter}"
        return f"{self.device_id}-{self.boot_id}-{self._counter}"

    def update(self, values: dict[str, float | None], now: float,
               stamp: float | None = None) -> list[AlarmMessage]:
        """Feed the latest value per parameter (None: not measured); return new alarm events.

        ``now`` is the patient's (simulated) time, which alarm delays are measured in: it is the
        condition that must persist. ``stamp`` (default ``now``) is the time written on the
        events, the device's wall clock, so that the station can measure alarm latency."""
        stamp = now if stamp is None else stamp
        events: list[AlarmMessage] = []
        for lim in self.limits:
            cond = self._conditions[lim.parameter]
            value = values.get(lim.parameter)
            if value is None:
                cond.since = None
                continue
            breach = lim.breach(value)
            if cond.active_id is None:
                if breach is None:
                    cond.since = None
                    continue
                if cond.since is None:
                    cond.since = now
                if now - cond.since >= lim.delay:
                    side, limit = breach
                    cond.active_id, cond.side = self._next_id(), side
                    events.append(self._event(lim, cond, "raised", value, limit, stamp))
            elif lim.back_inside(value):
                limit = lim.low if cond.side == "low" else lim.high
                events.append(self._event(lim, cond, "cleared", value, limit, stamp))
                cond.active_id, cond.since = None, None
        return events

    def _event(self, lim: Limit, cond: _Condition, state: str, value: float,
               limit: float | None, now: float) -> AlarmMessage:
        # each event (raise, clear) carries its own id; the condition's raise id links them
        event_id = cond.active_id if state == "raised" else f"{cond.active_id}c"
        return AlarmMessage(
            alarm_id=event_id,
            device_id=self.device_id,
            bed=self.bed,
            condition=f"{LABELS.get(lim.parameter, lim.parameter.upper())} {cond.side.upper()}",
            priority=lim.priority,
            state=state,
            value=round(float(value), 2),
            limit=limit,
            timestamp=now,
        )
