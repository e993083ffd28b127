"""The scenario's timeline as functions of time: where each parameter is heading, and which
rhythm and sensor faults are in force. Vectorised over arrays of times."""

from __future__ import annotations

import numpy as np

from ..flags import Flags
from ..scenarios import PARAMETERS, Scenario

FAULT_FLAGS = {"probe_off": Flags.PROBE_OFF, "lead_off": Flags.LEAD_OFF,
               "artifact": Flags.ARTIFACT}

# How one parameter drags another, per unit of change from the baseline.
HR_PER_DEGREE = 10.0  # fever: about 10 bpm per degree C
HR_PER_MMHG_DROP = 0.8  # hypovolaemia: baroreflex tachycardia as systolic falls
RR_PER_PERCENT_DESAT = 1.0  # hypoxia drives breathing
ETCO2_PER_BREATH = 0.6  # mmHg less end-tidal CO2 per breath a minute above baseline (blown off)
HR_PER_PERCENT_DESAT = 1.2


class Trend:
    """Piecewise-linear targets from the scenario's ramps and steps, plus the couplings."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.base = scenario.baseline
        # per parameter: breakpoints (times, values) of a piecewise-linear curve
        self._curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for p in PARAMETERS:
            times, values = [0.0], [self.base[p]]
            for ev in scenario.events:
                if ev.parameter != p:
                    continue
                current = float(np.interp(ev.at, times, values))
                if ev.at > times[-1]:
                    times.append(ev.at)
                    values.append(current)
                if ev.kind == "step":
                    times.append(ev.at + 1e-6)
                    values.append(float(ev.to))
                else:
                    times.append(ev.at + ev.over)
                    values.append(float(ev.to))
            self._curves[p] = (np.asarray(times), np.asarray(values))
        self._drives_hr = any(ev.parameter == "hr" for ev in scenario.events)
        self._rhythms = [(0.0, scenario.rhythm)] + [
            (ev.at, ev.rhythm) for ev in scenario.events if ev.kind == "rhythm"]
        self._faults = [(ev.at, ev.at + ev.duration, FAULT_FLAGS[ev.fault])
                        for ev in scenario.events if ev.kind == "fault"]
        self._rhythm_starts = np.asarray([at for at, _ in self._rhythms])
        self._rhythm_names = np.asarray([r for _, r in self._rhythms])
        pvcs = [(0.0, 0.0)] + [(ev.at, ev.per_min) for ev in scenario.events
                               if ev.kind == "pvcs"]
        self._pvc_starts = np.asarray([at for at, _ in pvcs])
        self._pvc_rates = np.asarray([r for _, r in pvcs])
        self._apnoeas = [(ev.at, ev.at + ev.duration) for ev in scenario.events
                         if ev.kind == "apnoea"]

    def raw(self, p: str, t: np.ndarray | float) -> np.ndarray:
        times, values = self._curves[p]
        return np.interp(t, times, values)

    def targets(self, t: np.ndarray) -> dict[str, np.ndarray]:
        """Where each parameter is heading at times ``t``, couplings included."""
        raw = {p: self.raw(p, t) for p in PARAMETERS}
        fever = raw["temp"] - self.base["temp"]
        sys_drop = np.maximum(self.base["sys"] - raw["sys"], 0.0)
        desat = np.maximum(self.base["spo2"] - raw["spo2"], 0.0)
        out = dict(raw)
        # a scenario that drives the heart rate itself (heart block, AF) has a rate the
        # baroreflex cannot move, so the BP coupling is off for it
        reflex = 0.0 if self._drives_hr else HR_PER_MMHG_DROP
        out["hr"] = raw["hr"] + HR_PER_DEGREE * fever + reflex * sys_drop \
            + HR_PER_PERCENT_DESAT * desat
        out["rr"] = raw["rr"] + RR_PER_PERCENT_DESAT * desat
        out["etco2"] = raw["etco2"] - ETCO2_PER_BREATH * (out["rr"] - self.base["rr"])
        return out

    def rhythm(self, t: float) -> str:
        current = self._rhythms[0][1]
        for at, r in self._rhythms:
            if at <= t:
                current = r
        return current

    def rhythm_names(self, t: np.ndarray) -> np.ndarray:
        """The rhythm's name at each of times ``t`` (vectorised)."""
        idx = np.searchsorted(self._rhythm_starts, t, side="right") - 1
        return self._rhythm_names[np.clip(idx, 0, len(self._rhythm_names) - 1)]

    def pvc_rate(self, t: np.ndarray) -> np.ndarray:
        """Ventricular ectopics per minute the scenario asks for at times ``t``."""
        idx = np.searchsorted(self._pvc_starts, t, side="right") - 1
        return self._pvc_rates[np.clip(idx, 0, len(self._pvc_rates) - 1)]

    @property
    def has_pvcs(self) -> bool:
        return bool(self._pvc_rates.any())

    def apnoea(self, t: np.ndarray | float) -> np.ndarray | float:
        """1.0 where the patient is not breathing at ``t``, else 0.0 (vectorised)."""
        if isinstance(t, float | int):  # one time: no numpy for the numerics' once a second
            return float(any(start <= t < end for start, end in self._apnoeas))
        t = np.asarray(t, dtype=float)
        out = np.zeros_like(t)
        for start, end in self._apnoeas:
            out = np.where((t >= start) & (t < end), 1.0, out)
        return out

    def is_af(self, t: np.ndarray) -> np.ndarray:
        """1.0 where the rhythm at ``t`` is atrial fibrillation, else 0.0 (vectorised)."""
        starts = np.asarray([at for at, _ in self._rhythms])
        af = np.asarray([r == "af" for _, r in self._rhythms], dtype=float)
        idx = np.searchsorted(starts, t, side="right") - 1
        return af[np.clip(idx, 0, len(af) - 1)]

    def flags(self, t: float) -> Flags:
        out = Flags.NONE
        for start, end, flag in self._faults:
            if start <= t < end:
                out |= flag
        return out
