"""The patient: correlated, continuous numerics on top of the scenario's trend.

Each numeric is the scenario's target (with its couplings: fever raises HR, hypovolaemia raises HR
as BP falls, desaturation raises RR) plus a slow Ornstein-Uhlenbeck drift, its own physiological
variability. The drift lives on a fixed one-second grid, advanced from the seed alone, so the value
at time t does not depend on how often or in what steps anyone asked: the same seed gives the same
patient, bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..flags import Flags
from ..scenarios import BOUNDS, PARAMETERS, Scenario, load_scenario
from .trend import Trend

WAVE_RATES = {"ecg": 250, "pleth": 125, "resp": 25}

# (standard deviation, time constant in seconds) of each parameter's own drift
DRIFT = {"hr": (2.5, 40.0), "spo2": (0.6, 30.0), "rr": (1.0, 60.0), "temp": (0.05, 600.0),
         "sys": (4.0, 120.0), "dia": (3.0, 120.0)}
AF_HR_SD = 9.0  # atrial fibrillation: the ventricular rate wanders far more


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
    rhythm: str
    on_oxygen: bool = False
    consciousness: str = "A"


class PatientModel:
    """One patient following one scenario. Times are simulated seconds since admission."""

    def __init__(self, scenario: Scenario | str, *, seed: int,
                 nibp_interval: float = 300.0) -> None:
        self._scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.seed = seed
        self.trend = Trend(self._scenario)
        self.nibp_interval = nibp_interval
        self._rng = np.random.default_rng([seed, 1])
        self._grid: dict[str, list[float]] = {p: [0.0] for p in PARAMETERS}
        self._nibp_requests: list[float] = []
        self._last_t = 0.0
        from .waves import WaveGenerator  # the waves follow this model's numerics

        self.waves = WaveGenerator(self, seed)

    @property
    def scenario(self) -> Scenario:
        return self._scenario

    # -- the drift grid ------------------------------------------------------------------------

    def _extend_grid(self, upto: int) -> None:
        n = upto + 1 - len(self._grid["hr"])
        if n <= 0:
            return
        shocks = self._rng.standard_normal((n, len(PARAMETERS)))
        for j, p in enumerate(PARAMETERS):
            sd, tau = DRIFT[p]
            a = math.exp(-1.0 / tau)
            b = sd * math.sqrt(1 - a * a)
            grid = self._grid[p]
            x = grid[-1]
            for k in range(n):  # n is seconds of simulated time, not samples
                x = a * x + b * shocks[k, j]
                grid.append(x)

    def values(self, t: np.ndarray) -> dict[str, np.ndarray]:
        """True (noise-free of faults) values of every parameter at times ``t`` (vectorised)."""
        t = np.asarray(t, dtype=float)
        top = int(math.ceil(float(t.max()))) + 1 if t.size else 1
        self._extend_grid(top)
        targets = self.trend.targets(t)
        out = {}
        for p in PARAMETERS:
            drift = np.interp(t, np.arange(len(self._grid[p])), self._grid[p])
            value = targets[p] + drift
            if p == "hr":
                value = value + self.trend.is_af(t) * self._af_wander(t)
            lo, hi = BOUNDS[p]
            out[p] = np.clip(value, lo, hi)
        out["spo2"] = np.minimum(out["spo2"], 100.0)
        return out

    def _af_wander(self, t: np.ndarray) -> np.ndarray:
        # a faster, larger wander of the ventricular rate, reproducible from the seed
        phase = (self.seed % 997) / 997 * 2 * math.pi
        return AF_HR_SD * (np.sin(t / 7.0 + phase) * 0.7 + np.sin(t / 2.3 + 2 * phase) * 0.5)

    # -- numerics ------------------------------------------------------------------------------

    def request_nibp(self, t: float) -> None:
        """Start a cuff measurement now (a nurse pressed the NIBP button)."""
        self._nibp_requests.append(float(t))

    def _last_nibp_time(self, t: float) -> float | None:
        times = [k * self.nibp_interval for k in range(int(t // self.nibp_interval) + 1)]
        times += [r for r in self._nibp_requests if r <= t]
        return max(times) if times else None

    def numerics(self, t: float) -> Numerics:
        if t < self._last_t:
            raise ValueError(f"time goes forward: asked for t={t} after t={self._last_t}")
        self._last_t = t
        v = {p: float(x[0]) for p, x in self.values(np.asarray([t])).items()}
        flags = self.trend.flags(t)
        rhythm = self.trend.rhythm(t)
        hr = round(v["hr"])
        spo2 = None if flags & Flags.PROBE_OFF else float(round(v["spo2"]))
        if flags & Flags.LEAD_OFF and flags & Flags.PROBE_OFF:
            hr = None
        nibp_t = self._last_nibp_time(t)
        sys_ = dia = map_ = None
        if nibp_t is not None:
            cuff = self.values(np.asarray([nibp_t]))
            sys_, dia = float(round(cuff["sys"][0])), float(round(cuff["dia"][0]))
            map_ = float(round(dia + (sys_ - dia) / 3))
        return Numerics(
            t=t, hr=None if hr is None else float(hr), spo2=spo2,
            rr=float(round(v["rr"])), temp=round(v["temp"], 1),
            nibp_sys=sys_, nibp_dia=dia, nibp_map=map_, nibp_time=nibp_t,
            flags=flags, rhythm=rhythm, on_oxygen=self._scenario.on_oxygen,
        )

    def waveform(self, channel: str, start: int, count: int) -> np.ndarray:
        """``count`` int16 samples of ``channel`` from sample index ``start`` (see waves.py)."""
        return self.waves.samples(channel, start, count)
