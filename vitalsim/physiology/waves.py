"""Waveforms that follow the numerics: ECG lead II, pleth and respiration.

The heart beats first: beat times come from the model's heart rate (with a little beat-to-beat
variability in sinus rhythm, and an irregularly irregular interval in AF). The ECG draws a PQRST
complex at each beat (no P wave in AF, fibrillatory waves instead); the pleth pulses a little after
each beat; the respiration trace follows the breathing rate. Samples are computed with numpy over
whole chunks; the only Python loop is one step per heartbeat. Noise is a hash of the sample index,
so a sample's value does not depend on how the stream was cut into chunks.

Units in the int16 samples: ECG in microvolts; pleth and respiration in arbitrary units
(pleth 0..~2000, respiration -1000..1000), as the monitor's analogue front end would give them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..flags import Flags

if TYPE_CHECKING:
    from .model import PatientModel

WAVE_RATES = {"ecg": 250, "pleth": 125, "resp": 25}

# PQRST as Gaussians: (offset from the R peak in s, amplitude in uV, width in s)
P_WAVE = (-0.16, 110.0, 0.022)
QRS_T = ((-0.028, -120.0, 0.008), (0.0, 1150.0, 0.010), (0.03, -260.0, 0.009))
T_AMPLITUDE, T_WIDTH = 300.0, 0.045
PLETH_DELAY = 0.18  # s from the R peak to the pulse arriving at the finger


def _hash_noise(index: np.ndarray, salt: float) -> np.ndarray:
    """Deterministic noise in [-0.5, 0.5) from sample indices (no generator state)."""
    x = np.sin(index * 12.9898 + salt * 78.233) * 43758.5453
    return x - np.floor(x) - 0.5


def _smooth_noise(t: np.ndarray, rate: float, salt: float) -> np.ndarray:
    """Slow noise: hashed knots at ``rate`` Hz, linearly interpolated (motion artefact)."""
    k = t * rate
    k0 = np.floor(k)
    a, b = _hash_noise(k0, salt), _hash_noise(k0 + 1, salt)
    return a + (b - a) * (k - k0)


class WaveGenerator:
    def __init__(self, model: PatientModel, seed: int) -> None:
        self.model = model
        self.seed = seed
        self._rng = np.random.default_rng([seed, 2])
        self._beats: list[float] = [0.25 + 0.5 * float(self._rng.random())]
        self._beat_af: list[bool] = [False]
        self._draws: list[tuple[float, float]] = []
        self._low_water = dict.fromkeys(WAVE_RATES, 0.0)  # earliest time each channel may ask
        self._resp_phase = [0.0]  # cumulative breathing phase (radians) at whole seconds

    # -- heartbeats ----------------------------------------------------------------------------

    def _draw(self) -> tuple[float, float]:
        """The next beat's random numbers: one normal, one uniform, in a fixed order, so that
        the beat sequence does not depend on how far ahead anyone asked for beats."""
        if not self._draws:
            normals = self._rng.standard_normal(256)
            uniforms = self._rng.random(256)
            self._draws = list(zip(normals.tolist(), uniforms.tolist(), strict=True))[::-1]
        return self._draws.pop()

    def _ensure_beats(self, until: float) -> None:
        while self._beats[-1] < until:
            start = self._beats[-1]
            secs = np.arange(math.floor(start), math.ceil(start) + 12)
            hr = self.model.values(secs)["hr"]
            af = self.model.trend.is_af(secs)
            t = start
            while t < until:
                i = int(t) - int(secs[0])
                if i >= len(secs) - 1:
                    break
                normal, uniform = self._draw()
                interval = 60.0 / hr[i]
                if af[i]:
                    interval *= 0.6 + 0.8 * uniform  # irregularly irregular
                else:
                    interval *= 1.0 + 0.025 * normal  # sinus beat-to-beat variability
                t += max(interval, 0.22)
                self._beats.append(t)
                self._beat_af.append(bool(af[i]))

    def beat_times(self, t0: float, t1: float) -> np.ndarray:
        """R-peak times in [t0, t1): what an ideal beat detector would find."""
        self._ensure_beats(t1 + 1.0)
        b = np.asarray(self._beats)
        return b[(b >= t0) & (b < t1)]

    # -- channels ------------------------------------------------------------------------------

    def _forget_before(self, t: float) -> None:
        """Drop beats long before ``t``: requests only move forward, so they are not needed."""
        keep = 0
        while keep + 3 < len(self._beats) and self._beats[keep + 3] < t - 3.0:
            keep += 1
        if keep > 64:
            del self._beats[:keep]
            del self._beat_af[:keep]

    def samples(self, channel: str, start: int, count: int) -> np.ndarray:
        if channel not in WAVE_RATES:
            raise ValueError(f"unknown channel {channel!r}; known: {sorted(WAVE_RATES)}")
        if start < 0 or count < 0:
            raise ValueError(f"start and count must be >= 0, got {start}, {count}")
        rate = WAVE_RATES[channel]
        index = np.arange(start, start + count, dtype=np.float64)
        t = index / rate
        if count == 0:
            return np.zeros(0, dtype=np.int16)
        self._forget_before(min(self._low_water.values()))
        self._low_water[channel] = float(t[0])
        self._ensure_beats(float(t[-1]) + 1.5)
        flags = np.asarray([int(self.model.trend.flags(float(s)))
                            for s in np.arange(math.floor(t[0]), math.floor(t[-1]) + 1)])
        per_sample = flags[(np.floor(t) - math.floor(t[0])).astype(int)]
        signal = getattr(self, f"_{channel}")(t, index)
        artefact = (per_sample & Flags.ARTIFACT) != 0
        if artefact.any():
            scale = {"ecg": 900.0, "pleth": 900.0, "resp": 700.0}[channel]
            signal = signal + artefact * scale * (
                _smooth_noise(t, 4.0, self.seed + 7) + 0.6 * _smooth_noise(t, 11.0, self.seed + 9))
        dead = Flags.PROBE_OFF if channel == "pleth" else Flags.LEAD_OFF
        signal = np.where((per_sample & dead) != 0, 0.0, signal)
        return np.clip(np.round(signal), -32768, 32767).astype(np.int16)

    def _ecg(self, t: np.ndarray, index: np.ndarray) -> np.ndarray:
        beats = np.asarray(self._beats)
        af_beats = np.asarray(self._beat_af)
        i = np.searchsorted(beats, t)
        out = np.zeros_like(t)
        for j in (i - 1, i):  # the beat before (its QRS-T) and the beat after (its P wave)
            jj = np.clip(j, 0, len(beats) - 1)
            dt = t - beats[jj]
            rr = np.clip(beats[np.clip(jj + 1, 0, len(beats) - 1)] - beats[jj], 0.3, 2.0)
            for off, amp, width in QRS_T:
                out += amp * np.exp(-((dt - off) ** 2) / (2 * width**2))
            t_off = 0.28 * np.sqrt(rr)
            out += T_AMPLITUDE * np.exp(-((dt - t_off) ** 2) / (2 * T_WIDTH**2))
            off, amp, width = P_WAVE
            out += (~af_beats[jj]) * amp * np.exp(-((dt - off) ** 2) / (2 * width**2))
        af_now = self.model.trend.is_af(t)
        fib = 45.0 * np.sin(2 * np.pi * 6.3 * t + 3 * _smooth_noise(t, 1.5, self.seed))
        wander = 60.0 * np.sin(2 * np.pi * 0.18 * t + self.seed)
        return out + af_now * fib + wander + 14.0 * _hash_noise(index, self.seed)

    def _pleth(self, t: np.ndarray, index: np.ndarray) -> np.ndarray:
        beats = np.asarray(self._beats) + PLETH_DELAY
        i = np.searchsorted(beats, t)
        out = np.zeros_like(t)
        for j in (i - 1, i - 2):  # pulses overlap at fast rates
            jj = np.clip(j, 0, len(beats) - 1)
            dt = t - beats[jj]
            valid = (j >= 0) & (dt >= 0)
            pulse = np.exp(-((dt - 0.12) ** 2) / (2 * 0.05**2)) \
                + 0.35 * np.exp(-((dt - 0.36) ** 2) / (2 * 0.06**2))
            out += valid * pulse
        return 300.0 + 1200.0 * out + 8.0 * _hash_noise(index, self.seed + 3)

    def _resp(self, t: np.ndarray, index: np.ndarray) -> np.ndarray:
        top = math.ceil(float(t[-1])) + 1
        have = len(self._resp_phase)
        if top >= have:
            secs = np.arange(have - 1, top + 1)
            rr = self.model.values(secs)["rr"]
            steps = 2 * np.pi * rr[:-1] / 60.0
            phase = self._resp_phase[-1] + np.cumsum(steps)
            self._resp_phase.extend(phase.tolist())
        phase = np.interp(t, np.arange(len(self._resp_phase)), self._resp_phase)
        return 900.0 * np.sin(phase) + 20.0 * _hash_noise(index, self.seed + 5)
