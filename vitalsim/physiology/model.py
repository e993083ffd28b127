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
        shocks = self._rng.standard_normal((n, len(PARAMETERS)))
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

    def numerics(self, t: float) -> Numerics:
        if t < self._last_t:
            raise ValueError(f"time goes forward: asked for t={t} after t={self._last_t}")
        self._last_t = t
        v = self._scalar(t)
        flags = self.trend.flags(t)
        rhythm = self.trend.rhythm(t)
        hr = round(v["hr"])
        spo2 = None if flags & Flags.PROBE_OFF else float(round(v["spo2"]))
        if flags & Flags.LEAD_OFF and flags & Flags.PROBE_OFF:
            hr = None
        nibp_t = self._last_nibp_time(t)
        sys_ = dia = map_ = None
        if nibp_t is not None:
            cuff = self._scalar(nibp_t)
            sys_, dia = float(round(cuff["sys"])), float(round(cuff["dia"]))
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
