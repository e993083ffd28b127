"""The patient: correlated, continuous numerics on top of the scenario's trend.

Each numeric is the scenario's target (with its couplings: fever raises HR, hypovolaemia raises HR
as BP falls, desaturation raises RR) plus a slow Ornstein-Uhlenbeck drift, its own physiological
variability. The drift lives on a fixed one-second grid, advanced from the seed alone, so the value
at time t does not depend on how often or in what steps anyone asked: the same seed gives the same
patient, bit for bit.

What the monitor *shows* is not always the truth, as on a real ward: motion artefact is counted
as beats and spoils the pleth (a false high HR and a false low SpO2), a lead off leaves the HR to
the pulse oximeter and blanks the impedance RR and the rhythm, a probe off blanks SpO2, and
VF or asystole leave no pulse to measure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..flags import Flags
from ..rhythms import PULSELESS
from ..scenarios import BOUNDS, PARAMETERS, Scenario, load_scenario
from .trend import Trend

# (standard deviation, time constant in seconds) of each parameter's own drift
DRIFT = {"hr": (2.5, 40.0), "spo2": (0.6, 30.0), "rr": (1.0, 60.0), "temp": (0.05, 600.0),
         "sys": (4.0, 120.0), "dia": (3.0, 120.0)}
DRIFT["etco2"] = (1.2, 60.0)
AF_HR_SD = 9.0  # atrial fibrillation: the ventricular rate wanders far more
#: the parameters drawn from the model's first random stream, in its historical order (etco2,
#: added later, has a stream of its own, so that the older parameters stay what they were)
_FIRST_STREAM = ("hr", "spo2", "rr", "temp", "sys", "dia")
# motion artefact: how far the monitor is fooled (the counter takes movement for beats, the
# oximeter loses the pulse in the noise), around these offsets
ARTEFACT_HR_GAIN = 48.0  # bpm added
ARTEFACT_SPO2_LOSS = 11.0  # % taken away
PULSELESS_ABP = (18.0, 14.0)  # mmHg sys/dia an arterial line shows with no cardiac output


@dataclass(frozen=True)
class Numerics:
    """What the monitor shows at simulated time ``t`` (None: not measurable right now)."""

    t: float
    hr: float | None
    spo2: float | None
    rr: float | None
    temp: float | None
    nibp_sys: float | None
    nibp_dia: float | None
    nibp_map: float | None
    nibp_time: float | None
    flags: Flags
    rhythm: str | None  # None: no rhythm analysed (leads off)
    on_oxygen: bool = False
    consciousness: str = "A"
    pvc_per_min: int | None = None
    etco2: float | None = None  # None: no capnograph
    awrr: float | None = None
    abp_sys: float | None = None  # None: no arterial line
    abp_dia: float | None = None
    abp_map: float | None = None
    #: seconds since the capnograph saw the last breath begin (its apnoea timer)
    since_breath: float | None = None


class PatientModel:
    """One patient following one scenario. Times are simulated seconds since admission."""

    def __init__(self, scenario: Scenario | str, *, seed: int,
                 nibp_interval: float = 300.0) -> None:
        self._scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.seed = seed
        self.trend = Trend(self._scenario)
        self.nibp_interval = nibp_interval
        self._rng = np.random.default_rng([seed, 1])
        self._rng_etco2 = np.random.default_rng([seed, 4])
        self._drift = dict.fromkeys(PARAMETERS, 0.0)
        self._grid: dict[str, np.ndarray] = {p: np.empty(0) for p in PARAMETERS}
        self._secs = np.empty(0)
        self._nibp_requests: list[float] = []
        self._last_t = 0.0
        from .waves import WaveGenerator  # the waves follow this model's numerics

        self.waves = WaveGenerator(self, seed)

    @property
    def scenario(self) -> Scenario:
        return self._scenario

    # -- the value grid -------------------------------------------------------------------------
    # Every parameter is computed once per whole simulated second (trend + couplings + drift,
    # clipped to physiological bounds) in blocks, and read between seconds by interpolation.

    GRID_BLOCK = 300

    def _extend_grid(self, upto: int) -> None:
        have = len(self._grid["hr"])
        if upto < have:
            return
        n = max(upto + 1 - have, self.GRID_BLOCK)
        shocks = np.hstack([self._rng.standard_normal((n, len(_FIRST_STREAM))),
                            self._rng_etco2.standard_normal((n, 1))])
        secs = np.arange(have, have + n, dtype=float)
        targets = self.trend.targets(secs)
        for j, p in enumerate(PARAMETERS):
            sd, tau = DRIFT[p]
            a = math.exp(-1.0 / tau)
            b = sd * math.sqrt(1 - a * a)
            drift = np.empty(n)
            x = self._drift[p]
            for k in range(n):  # one step per simulated second, not per sample
                x = a * x + b * shocks[k, j]
                drift[k] = x
            self._drift[p] = x
            value = targets[p] + drift
            if p == "hr":
                value = value + self.trend.is_af(secs) * self._af_wander(secs)
            lo, hi = BOUNDS[p]
            value = np.clip(value, lo, min(hi, 100.0) if p == "spo2" else hi)
            self._grid[p] = np.concatenate([self._grid[p], value])

    def values(self, t: np.ndarray) -> dict[str, np.ndarray]:
        """Every parameter's true value at times ``t`` (before sensor faults), vectorised."""
        t = np.asarray(t, dtype=float)
        top = int(math.ceil(float(t.max()))) + 1 if t.size else 1
        self._extend_grid(top)
        secs = self._seconds[: len(self._grid["hr"])]
        return {p: np.interp(t, secs, self._grid[p]) for p in PARAMETERS}

    def _scalar(self, t: float) -> dict[str, float]:
        """All parameters at one time, without numpy's per-call overhead."""
        i = int(t)
        self._extend_grid(i + 2)
        frac = t - i
        return {p: float(g[i] + frac * (g[i + 1] - g[i])) for p, g in self._grid.items()}

    @property
    def _seconds(self) -> np.ndarray:
        n = len(self._grid["hr"])
        if len(self._secs) < n:
            self._secs = np.arange(n + self.GRID_BLOCK, dtype=float)
        return self._secs

    def _af_wander(self, t: np.ndarray) -> np.ndarray:
        # a faster, larger wander of the ventricular rate, reproducible from the seed
        phase = (self.seed % 997) / 997 * 2 * math.pi
        return AF_HR_SD * (np.sin(t / 7.0 + phase) * 0.7 + np.sin(t / 2.3 + 2 * phase) * 0.5)

    # -- numerics ------------------------------------------------------------------------------

    def request_nibp(self, t: float) -> None:
        """Start a cuff measurement now (a nurse pressed the NIBP button)."""
        self._nibp_requests.append(float(t))

    def _last_nibp_time(self, t: float) -> float | None:
        scheduled = (t // self.nibp_interval) * self.nibp_interval
        requested = [r for r in self._nibp_requests if r <= t]
        return max([scheduled, *requested])

    @property
    def channels(self) -> tuple[str, ...]:
        """The wave channels this patient's monitor has: the extra sensors add theirs."""
        return ("ecg", "pleth", "resp") + ("co2",) * self._scenario.capnography \
            + ("abp",) * self._scenario.arterial_line

    def numerics(self, t: float) -> Numerics:
        if t < self._last_t:
            raise ValueError(f"time goes forward: asked for t={t} after t={self._last_t}")
        self._last_t = t
        v = self._scalar(t)
        flags = self.trend.flags(t)
        rhythm: str | None = self.trend.rhythm(t)
        pulseless = rhythm in PULSELESS
        hr: float | None = 0.0 if rhythm == "asystole" else float(round(v["hr"]))
        if rhythm == "vf":
            hr = None  # no complexes to count
        spo2 = None if flags & Flags.PROBE_OFF or pulseless else float(round(v["spo2"]))
        rr: float | None = 0.0 if self.trend.apnoea(t) else float(round(v["rr"]))
        pvc = self.waves.pvc_count(t - 60.0, t) if self.trend.has_pvcs else 0
        if flags & Flags.ARTIFACT:
            # movement counted as beats, and a pleth the oximeter cannot read true
            wobble = math.sin(t / 3.0 + self.seed)
            if hr is not None:
                hr = float(round(hr + ARTEFACT_HR_GAIN + 12.0 * wobble))
            if spo2 is not None:
                spo2 = float(round(spo2 - ARTEFACT_SPO2_LOSS - 3.0 * wobble))
        if flags & Flags.LEAD_OFF:
            # no ECG: the HR is the pulse rate the oximeter counts; no impedance RR, no rhythm
            hr = None if spo2 is None else float(round(v["hr"]))
            if hr is not None:
                flags |= Flags.HR_FROM_PLETH
            rr, rhythm, pvc = None, None, None
        etco2 = awrr = since_breath = None
        if self._scenario.capnography:
            last = self.waves.last_breath(t)
            since_breath = t - last
            breathing = not self.trend.apnoea(t)
            etco2 = float(round(v["etco2"])) if breathing else 0.0
            awrr = float(round(v["rr"])) if breathing else 0.0
        abp_sys = abp_dia = abp_map = None
        if self._scenario.arterial_line:
            if pulseless:
                abp_sys, abp_dia = PULSELESS_ABP
            else:  # a radial line reads a slightly wider pulse pressure than the cuff
                abp_sys, abp_dia = float(round(v["sys"] + 4)), float(round(v["dia"] - 2))
            abp_map = float(round(abp_dia + (abp_sys - abp_dia) / 3))
        nibp_t = self._last_nibp_time(t)
        sys_ = dia = map_ = None
        if nibp_t is not None and self.trend.rhythm(nibp_t) not in PULSELESS:
            # (with no pulse, the cuff finds no oscillations: the reading fails)
            cuff = self._scalar(nibp_t)
            sys_, dia = float(round(cuff["sys"])), float(round(cuff["dia"]))
            map_ = float(round(dia + (sys_ - dia) / 3))
        return Numerics(
            t=t, hr=hr, spo2=spo2, rr=rr, temp=round(v["temp"], 1),
            nibp_sys=sys_, nibp_dia=dia, nibp_map=map_, nibp_time=nibp_t,
            flags=flags, rhythm=rhythm, on_oxygen=self._scenario.on_oxygen,
            pvc_per_min=pvc, etco2=etco2, awrr=awrr, abp_sys=abp_sys, abp_dia=abp_dia,
            abp_map=abp_map, since_breath=since_breath,
        )

    def waveform(self, channel: str, start: int, count: int) -> np.ndarray:
        """``count`` int16 samples of ``channel`` from sample index ``start`` (see waves.py)."""
        return self.waves.samples(channel, start, count)
