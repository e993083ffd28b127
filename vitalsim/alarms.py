"""Alarm limits, priorities and delays: the bedside monitor's own judgement of its numerics.

A real monitor does not alarm on one sample over a limit: a condition must persist for an *alarm
delay* before it is raised, and must be back inside the limit (with a little hysteresis) before it
clears. This module is pure: it is fed numerics and the time, and returns alarm events.

A monitor is fooled as a real one is: an alarm raised while the monitor flags motion artefact
is marked ``artefact`` (a false alarm the station can tell apart), and a value the monitor
cannot measure (None) stops the condition's timer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .flags import Flags
from .protocol.alarm_channel import AlarmMessage

#: how each parameter is named on an alarm, as a monitor labels it
LABELS = {"hr": "HR", "spo2": "SpO2", "rr": "RR", "temp": "TEMP", "nibp_sys": "NIBP SYS",
          "nibp_dia": "NIBP DIA", "nibp_map": "NIBP MAP", "abp_sys": "ABP SYS",
          "abp_dia": "ABP DIA", "abp_map": "ABP MAP", "etco2": "ETCO2",
          "pvc_per_min": "PVCs/min"}


@dataclass(frozen=True)
class Limit:
    """One alarm condition: a numeric below ``low`` or above ``high`` for ``delay`` seconds, or,
    with ``rhythm`` set, the monitor labelling that rhythm for ``delay`` seconds.

    ``condition`` names the alarm when it is not "<label> LOW/HIGH" (e.g. "DESAT", "APNOEA",
    "VF"). ``parameter`` is the numeric whose live value the station shows beside the alarm;
    rhythm alarms and apnoea have none (their ``parameter`` on the wire is null)."""

    parameter: str
    low: float | None
    high: float | None
    priority: str = "medium"
    delay: float = 5.0
    hysteresis: float = 1.0
    condition: str | None = None
    rhythm: str | None = None

    def breach(self, value: float) -> tuple[str, float] | None:
        """("low"|"high", the limit crossed), or None when the value is inside."""
        if self.low is not None and value < self.low:
            return "low", self.low
        if self.high is not None and value > self.high:
            return "high", self.high
        return None

    def back_inside(self, value: float, side: str) -> bool:
        """Whether an alarm raised on ``side`` ("low" or "high") may clear: the value is back
        past that limit by the hysteresis. Only that side counts: a heart rate that falls from
        189 to 0 is no longer above 120, and HR HIGH must clear (HR 0 is a low alarm's
        business), where requiring it inside both limits kept HR HIGH with "HR 0 > 120"."""
        if side == "low":
            return self.low is None or value >= self.low + self.hysteresis
        return self.high is None or value <= self.high - self.hysteresis

    def condition_for(self, side: str) -> str:
        """The alarm's name when this limit is crossed on ``side`` ("low" or "high")."""
        if self.condition is not None:
            return self.condition
        return f"{LABELS.get(self.parameter, self.parameter.upper())} {side.upper()}"

    @property
    def reports(self) -> str | None:
        """The parameter an alarm of this limit names on the wire (None: a rhythm, apnoea)."""
        return None if self.rhythm is not None or self.parameter == "since_breath" \
            else self.parameter


def rhythm_limit(rhythm: str, condition: str, priority: str, delay: float) -> Limit:
    """An arrhythmia alarm: raised when the monitor has labelled ``rhythm`` for ``delay`` s."""
    return Limit(f"rhythm:{rhythm}", None, 0.5, priority, delay=delay, hysteresis=0.0,
                 condition=condition, rhythm=rhythm)


#: an HR limit on the patients' own rate: alarms raise and clear every few seconds, a steady
#: stream of alarm traffic for exercising the alarm channel (``--alarm-storm``, the labs, tests)
FLAPPING_HR = (Limit("hr", None, 72, "medium", delay=0.0, hysteresis=0.0),)

# The red tier's arrhythmia alarms: how long the rhythm must be seen before the alarm (the
# monitor's own analysis needs a few complexes, or, for asystole, 4 s without one), and the
# latency budget from the rhythm's onset to the alarm on the central station. IEC 60601-2-27
# asks a cardiac monitor to alarm on ventricular tachycardia and asystole within 10 s; the
# budget keeps that for the whole chain, bedside to station, so lab 05 can check it end to end.
ASYSTOLE_DELAY = 4.0
VF_DELAY = 2.0
VT_DELAY = 3.0
#: seconds from the onset of each red arrhythmia to its alarm on the station
ARRHYTHMIA_LATENCY_BUDGET = {"ASYSTOLE": 10.0, "VF": 10.0, "VT": 10.0}
#: seconds without a breath on the capnogram before APNOEA (adult default)
APNOEA_SECONDS = 20.0


def default_limits() -> tuple[Limit, ...]:
    """Adult default limits, of the kind a ward sets on admission.

    Source of the limits (adult factory defaults): Mindray BeneVision TM80/TM70 Telemetry
    Monitor Operator's Manual, "Factory Default Parameter Alarm Settings" (chapter 12): PR/HR
    50/120, SpO2 low 90 with SpO2 Desat 80 at high priority, NIBP-S 90/160, NIBP-D 50/90,
    NIBP-M 60/110; its arrhythmia chapter's V-Tach rate 130. The course applies the NIBP limits
    to an arterial line too. The course's own choices, not from that manual: extreme
    brady/tachycardia at 40/170 (red: below 40 a heart no longer keeps an adult's pressure,
    above 170 it no longer fills, while fast AF at 140-150 stays yellow), RR 8/25 (NEWS2
    scores 25 a 3), temperature 35.5/38.5 (low priority), ETCO2 25/50, apnoea after 20 s,
    PVCs over 10 a minute, and the delays.

    Tiers, as vendors set them: a limit alarm is medium (yellow); high (red) is kept for what
    is life-threatening: extreme brady/tachycardia, desaturation below 80, arterial systolic
    below 50 or mean below 40 mmHg, apnoea, asystole, VF and VT.
    """
    return (
        Limit("hr", 50, 120, "medium", delay=5.0, hysteresis=3),
        Limit("hr", 40, None, "high", delay=3.0, hysteresis=5, condition="EXTREME BRADY"),
        Limit("hr", None, 170, "high", delay=3.0, hysteresis=5, condition="EXTREME TACHY"),
        Limit("spo2", 90, None, "medium", delay=10.0, hysteresis=1),
        Limit("spo2", 80, None, "high", delay=5.0, hysteresis=1, condition="DESAT"),
        Limit("rr", 8, 25, "medium", delay=10.0, hysteresis=1),
        Limit("temp", 35.5, 38.5, "low", delay=5.0, hysteresis=0.2),
        Limit("nibp_sys", 90, 160, "medium", delay=0.0, hysteresis=3),
        Limit("nibp_dia", 50, 90, "medium", delay=0.0, hysteresis=3),
        Limit("nibp_map", 60, 110, "medium", delay=0.0, hysteresis=3),
        Limit("abp_sys", 90, 160, "medium", delay=5.0, hysteresis=3),
        Limit("abp_dia", 50, 90, "medium", delay=5.0, hysteresis=3),
        Limit("abp_map", 60, 110, "medium", delay=5.0, hysteresis=3),
        # severe hypotension on the arterial line, red: the pressure tier by analogy with
        # SpO2's (low 90 yellow, Desat 80 red, in the manual above), which has no red ABP
        # tier; the thresholds are the course's: below a systolic of 50 or a mean of 40 mmHg
        # the brain and the heart are no longer perfused (a MAP under 65 is already the
        # Surviving Sepsis Campaign's target for vasopressors), as in VT with no output
        Limit("abp_sys", 50, None, "high", delay=3.0, hysteresis=3,
              condition="ABP SYS EXTREME LOW"),
        Limit("abp_map", 40, None, "high", delay=3.0, hysteresis=3,
              condition="ABP MAP EXTREME LOW"),
        Limit("etco2", 25, 50, "medium", delay=10.0, hysteresis=1),
        Limit("since_breath", None, APNOEA_SECONDS, "high", delay=0.0, hysteresis=1,
              condition="APNOEA"),
        Limit("pvc_per_min", None, 10, "medium", delay=5.0, hysteresis=1),
        rhythm_limit("asystole", "ASYSTOLE", "high", ASYSTOLE_DELAY),
        rhythm_limit("vf", "VF", "high", VF_DELAY),
        rhythm_limit("vt", "VT", "high", VT_DELAY),
        rhythm_limit("af", "AFIB", "medium", 10.0),
    )


#: the numerics (and the rhythm) an AlarmMonitor watches
ALARM_INPUTS = ("hr", "spo2", "rr", "temp", "nibp_sys", "nibp_dia", "nibp_map", "abp_sys",
                "abp_dia", "abp_map", "etco2", "since_breath", "pvc_per_min", "rhythm")


def alarm_inputs(n: object) -> dict[str, float | str | None]:
    """What an :class:`AlarmMonitor` watches, from a monitor's numerics (any object with the
    fields of :class:`vitalsim.physiology.Numerics`): the bedside monitor and the course's
    replays feed it the same way."""
    return {p: getattr(n, p, None) for p in ALARM_INPUTS}


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
        self._conditions = [_Condition() for _ in self.limits]
        self._counter = 0

    def _next_id(self) -> str:
        self._counter += 1
        if self.boot_id is None:
            return f"{self.device_id}-{self._counter}"
        return f"{self.device_id}-{self.boot_id}-{self._counter}"

    def update(self, values: dict[str, float | str | None], now: float,
               stamp: float | None = None, *, flags: int = 0) -> list[AlarmMessage]:
        """Feed the latest value per parameter (None: not measured); return new alarm events.

        ``now`` is the patient's (simulated) time, which alarm delays are measured in: it is the
        condition that must persist. ``stamp`` (default ``now``) is the time written on the
        events, the device's wall clock, so that the station can measure alarm latency.
        ``flags`` are the monitor's signal-quality flags (an alarm raised in motion artefact
        says so). A rhythm limit is fed ``values["rhythm"]`` (a name, or None: not analysed)."""
        stamp = now if stamp is None else stamp
        artefact = bool(flags & Flags.ARTIFACT)
        events: list[AlarmMessage] = []
        rhythm = values.get("rhythm")
        for lim, cond in zip(self.limits, self._conditions, strict=True):
            if lim.rhythm is not None:
                value = None if rhythm is None else float(rhythm == lim.rhythm)
            else:
                value = values.get(lim.parameter)  # type: ignore[assignment]
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
                    events.append(self._event(lim, cond, "raised", values, value, limit, stamp,
                                              artefact))
            elif lim.back_inside(value, cond.side):
                limit = lim.low if cond.side == "low" else lim.high
                events.append(self._event(lim, cond, "cleared", values, value, limit, stamp,
                                          artefact))
                cond.active_id, cond.since = None, None
        return events

    def _event(self, lim: Limit, cond: _Condition, state: str, values: dict,
               value: float, limit: float | None, now: float, artefact: bool) -> AlarmMessage:
        # each event (raise, clear) carries its own id; the condition's raise id links them
        event_id = cond.active_id if state == "raised" else f"{cond.active_id}c"
        if lim.rhythm is not None:  # a rhythm alarm shows the heart rate, and no limit
            hr = values.get("hr")
            shown, limit = (None if hr is None else float(hr)), None
        else:
            shown = float(value)
        return AlarmMessage(
            alarm_id=event_id,
            device_id=self.device_id,
            bed=self.bed,
            condition=lim.condition_for(cond.side),
            priority=lim.priority,
            state=state,
            value=None if shown is None else round(shown, 2),
            limit=limit,
            timestamp=now,
            parameter=lim.reports,
            artefact=artefact,
        )
