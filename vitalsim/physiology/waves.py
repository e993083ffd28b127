"""Waveforms that follow the numerics: ECG lead II, pleth, respiration, capnogram and arterial
pressure.

The heart beats first: beat times and kinds come from the model's heart rate and the rhythm in
force. Each beat is one of four kinds: a sinus beat (P wave, narrow QRS), a narrow beat without a
P wave (AF, flutter, SVT), a wide ventricular beat (a PVC, VT, the escape rhythm of complete heart
block) or a P wave that is not conducted (2nd degree block). VF and asystole have no beats at all.
The ECG draws each beat's complex, plus what lies between beats (fibrillatory or flutter waves,
the independent P waves of 3rd degree block, the chaos of VF). The pleth and the arterial
pressure pulse after each beat with a stroke that depends on how long the ventricle had to fill:
AF's shortest intervals give little or no pulse (a pulse deficit), a PVC a weak one, VF and
asystole none. Breathing has an inspiration a third of each breath long (I:E 1:2); the capnogram
rises with expiration to its end-tidal plateau and falls to zero with inspiration.

Samples are computed with numpy over whole chunks; the only Python loop is one step per heartbeat.
Noise is a hash of the sample index, so a sample's value does not depend on how the stream was
cut into chunks.

Units in the int16 samples: ECG in microvolts; pleth and respiration in arbitrary units
(pleth 0..~2000, respiration -1000..1000), as the monitor's analogue front end would give them;
capnogram and arterial pressure in tenths of a mmHg.
"""

from __future__ import annotations

import bisect
import math
from typing import TYPE_CHECKING

import numpy as np

from ..flags import Flags

if TYPE_CHECKING:
    from .model import PatientModel

WAVE_RATES = {"ecg": 250, "pleth": 125, "resp": 25, "co2": 25, "abp": 125}

# beat kinds (one per beat in the generator's lists): a PVC is drawn as a ventricular beat but
# counted as ectopy, where VT's and complete block's ventricular beats are the rhythm itself
SINUS, NARROW, VENTRICULAR, DROPPED, PVC = 0, 1, 2, 3, 4
#: rhythms whose beats have no P wave in front of a narrow QRS
_NARROW_RHYTHMS = frozenset({"af", "flutter", "svt"})
PVC_COUPLING = 0.6  # a PVC comes at this fraction of the beat interval; a pause follows
BLOCK2_CONDUCTED = 2  # Mobitz II 3:2: two P waves conducted, the third blocked
BLOCK3_ATRIAL_RATE = 78.0  # per minute: the atria go on at their own rate in complete block
FLUTTER_RATE = 300.0  # flutter waves per minute
INSPIRATION = 1 / 3  # the fraction of each breath spent breathing in (I:E 1:2)

# PQRST as Gaussians: (offset from the R peak in s, amplitude in uV, width in s)
P_WAVE = (-0.16, 110.0, 0.022)
QRS_T = ((-0.028, -120.0, 0.008), (0.0, 1150.0, 0.010), (0.03, -260.0, 0.009))
T_AMPLITUDE, T_WIDTH = 300.0, 0.045
WIDE_QRS_T = ((0.0, 950.0, 0.046), (0.10, -380.0, 0.04), (0.34, -300.0, 0.07))
PLETH_DELAY = 0.18  # s from the R peak to the pulse arriving at the finger
ABP_DELAY = 0.09  # s from the R peak to the pulse at a radial arterial line
PULSELESS_ABP = 16.0  # mmHg: what an arterial line reads with no cardiac output


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
        self._kinds: list[int] = [SINUS]
        self._amps: list[float] = [1.0]  # each beat's stroke: 1 a normal pulse, 0 none
        self._cursor = self._beats[0]  # beats are known up to here
        self._pause = 0.0  # the compensatory pause owed after a PVC (s)
        self._block_n = 0  # P waves since the last blocked one (2nd degree block)
        self._draws: list[tuple[float, float]] = []
        self._low_water: dict[str, float] = {}  # earliest time each channel in use may ask
        self._resp_phase = [0.0]  # cumulative breathing phase (radians) at whole seconds
        self._breath_starts = [0.0]  # whole seconds at which a breath began (the capnograph's)

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
        trend = self.model.trend
        while self._cursor < until:
            start = self._cursor
            secs = np.arange(math.floor(start), math.ceil(start) + 12)
            hr = self.model.values(secs)["hr"]
            rhythms = trend.rhythm_names(secs)
            pvcs = trend.pvc_rate(secs)
            t = start
            while t < until:
                i = int(t) - int(secs[0])
                if i >= len(secs) - 1:
                    break
                t = self._next_beat(t, float(hr[i]), rhythms[i], float(pvcs[i]))
            self._cursor = t

    def _next_beat(self, t: float, hr: float, rhythm: str, pvc_rate: float) -> float:
        """Add the beat after ``t`` (or step over a beatless moment); return the new cursor."""
        if rhythm in ("vf", "asystole"):
            self._pause, self._block_n = 0.0, 0
            return t + 0.25  # no beats: the cursor moves on alone
        normal, uniform = self._draw()
        base = 60.0 / hr
        kind = NARROW if rhythm in _NARROW_RHYTHMS else SINUS
        if rhythm == "af":
            interval = base * (0.6 + 0.8 * uniform)  # irregularly irregular
        elif rhythm in ("flutter", "svt"):
            interval = base * (1.0 + 0.004 * normal)  # strictly regular
        elif rhythm in ("vt", "block3"):
            interval, kind = base * (1.0 + 0.008 * normal), VENTRICULAR
        elif rhythm == "block2":
            # P waves at 1.5x the ventricular rate; every third is not conducted
            interval = base * 2 / 3 * (1.0 + 0.01 * normal)
            self._block_n += 1
            if self._block_n > BLOCK2_CONDUCTED:
                kind, self._block_n = DROPPED, 0
        else:
            interval = base * (1.0 + 0.025 * normal)  # sinus beat-to-beat variability
        if self._pause:
            interval, self._pause = interval + self._pause, 0.0
        elif pvc_rate > 0 and kind != VENTRICULAR and uniform < pvc_rate / hr:
            # an ectopic beat: early, wide, then a compensatory pause
            self._pause = (1 - PVC_COUPLING) * interval
            interval, kind = interval * PVC_COUPLING, PVC
        interval = max(interval, 0.22)
        # the stroke depends on the filling time against the usual interval: AF's short
        # intervals barely open the aortic valve (pulse deficit)
        fill = float(np.clip((interval / base - 0.65) / 0.35, 0.0, 1.15))
        amp = 0.0 if kind == DROPPED else fill * (0.4 if kind in (VENTRICULAR, PVC) else 1.0)
        t += interval
        self._beats.append(t)
        self._kinds.append(kind)
        self._amps.append(amp)
        return t

    def beat_times(self, t0: float, t1: float) -> np.ndarray:
        """QRS times in [t0, t1): what an ideal beat detector would find (blocked P waves
        are not beats)."""
        self._ensure_beats(t1 + 1.0)
        b, k = np.asarray(self._beats), np.asarray(self._kinds)
        return b[(b >= t0) & (b < t1) & (k != DROPPED)]

    def pvc_count(self, t0: float, t1: float) -> int:
        """How many ventricular ectopics in [t0, t1) (what the monitor's PVC counter shows)."""
        if self._cursor < t1 + 1.0:  # beats for the next ten seconds at once, not each second
            self._ensure_beats(t1 + 10.0)
        self._forget_before(min([t0, *self._low_water.values()]))
        i0, i1 = bisect.bisect_left(self._beats, t0), bisect.bisect_left(self._beats, t1)
        return self._kinds[i0:i1].count(PVC)

    # -- channels ------------------------------------------------------------------------------

    def _forget_before(self, t: float) -> None:
        """Drop beats long before ``t``: requests only move forward, so they are not needed."""
        keep = 0
        while keep + 3 < len(self._beats) and self._beats[keep + 3] < t - 63.0:
            keep += 1
        if keep > 64:
            del self._beats[:keep]
            del self._kinds[:keep]
            del self._amps[:keep]

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
        self._low_water[channel] = float(t[0])
        self._forget_before(min(self._low_water.values()))
        self._ensure_beats(float(t[-1]) + 1.5)
        flags = np.asarray([int(self.model.trend.flags(float(s)))
                            for s in np.arange(math.floor(t[0]), math.floor(t[-1]) + 1)])
        per_sample = flags[(np.floor(t) - math.floor(t[0])).astype(int)]
        signal = getattr(self, f"_{channel}")(t, index)
        artefact = (per_sample & Flags.ARTIFACT) != 0
        if artefact.any():
            scale = {"ecg": 900.0, "pleth": 900.0, "resp": 700.0, "co2": 40.0,
                     "abp": 150.0}[channel]
            signal = signal + artefact * scale * (
                _smooth_noise(t, 4.0, self.seed + 7) + 0.6 * _smooth_noise(t, 11.0, self.seed + 9))
        dead = {"pleth": Flags.PROBE_OFF, "ecg": Flags.LEAD_OFF,
                "resp": Flags.LEAD_OFF}.get(channel, Flags.NONE)
        if dead:
            signal = np.where((per_sample & dead) != 0, 0.0, signal)
        return np.clip(np.round(signal), -32768, 32767).astype(np.int16)

    def _beat_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.asarray(self._beats), np.asarray(self._kinds), np.asarray(self._amps)

    def _ecg(self, t: np.ndarray, index: np.ndarray) -> np.ndarray:
        beats, kinds, _ = self._beat_arrays()
        last = len(beats) - 1
        i = np.searchsorted(beats, t)
        out = np.zeros_like(t)
        for j in (i - 1, i):  # the beat before (its QRS-T) and the beat after (its P wave)
            jj = np.clip(j, 0, last)
            dt = t - beats[jj]
            kind = kinds[jj]
            narrow = (kind == SINUS) | (kind == NARROW)
            wide = (kind == VENTRICULAR) | (kind == PVC)
            rr = np.clip(beats[np.clip(jj + 1, 0, last)] - beats[jj], 0.3, 2.0)
            for off, amp, width in QRS_T:
                out += narrow * amp * np.exp(-((dt - off) ** 2) / (2 * width**2))
            t_off = 0.28 * np.sqrt(rr)
            out += narrow * T_AMPLITUDE * np.exp(-((dt - t_off) ** 2) / (2 * T_WIDTH**2))
            for off, amp, width in WIDE_QRS_T:
                out += wide * amp * np.exp(-((dt - off) ** 2) / (2 * width**2))
            off, amp, width = P_WAVE
            with_p = (kind == SINUS) | (kind == DROPPED)
            out += with_p * amp * np.exp(-((dt - off) ** 2) / (2 * width**2))
        rhythm = self.model.trend.rhythm_names(t)
        af_now = rhythm == "af"
        fib = 45.0 * np.sin(2 * np.pi * 6.3 * t + 3 * _smooth_noise(t, 1.5, self.seed))
        out += af_now * fib
        flutter = rhythm == "flutter"
        if flutter.any():  # sawtooth F waves at 300 a minute
            phase = (t * FLUTTER_RATE / 60.0) % 1.0
            out += flutter * 160.0 * (0.5 - phase)
        block3 = rhythm == "block3"
        if block3.any():  # the atria beat on, unrelated to the ventricles
            period = 60.0 / BLOCK3_ATRIAL_RATE
            dtp = (t % period) - period / 2
            out += block3 * P_WAVE[1] * np.exp(-(dtp**2) / (2 * P_WAVE[2] ** 2))
        vf = rhythm == "vf"
        if vf.any():  # coarse, chaotic, no complexes
            envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 0.4 * t + 4 * _smooth_noise(t, 0.7, 3))
            out += vf * 420.0 * envelope * np.sin(
                2 * np.pi * 5.2 * t + 5 * _smooth_noise(t, 1.8, self.seed + 11))
        wander = 60.0 * np.sin(2 * np.pi * 0.18 * t + self.seed)
        return out + wander + 14.0 * _hash_noise(index, self.seed)

    def _pulse(self, t: np.ndarray, delay: float) -> np.ndarray:
        """The sum of the pulses of recent beats at ``t``, each scaled by its stroke."""
        beats, _, amps = self._beat_arrays()
        beats = beats + delay
        i = np.searchsorted(beats, t)
        out = np.zeros_like(t)
        for j in (i - 1, i - 2):  # pulses overlap at fast rates
            jj = np.clip(j, 0, len(beats) - 1)
            dt = t - beats[jj]
            valid = (j >= 0) & (dt >= 0)
            pulse = np.exp(-((dt - 0.12) ** 2) / (2 * 0.05**2)) \
                + 0.35 * np.exp(-((dt - 0.36) ** 2) / (2 * 0.06**2))
            out += valid * amps[jj] * pulse
        return out

    def _pleth(self, t: np.ndarray, index: np.ndarray) -> np.ndarray:
        return 300.0 + 1200.0 * self._pulse(t, PLETH_DELAY) \
            + 8.0 * _hash_noise(index, self.seed + 3)

    def _abp(self, t: np.ndarray, index: np.ndarray) -> np.ndarray:
        v = self.model.values(t)
        sys_, dia = v["sys"] + 4.0, v["dia"] - 2.0  # a radial line reads a little wider
        pressure = dia + (sys_ - dia) * np.minimum(self._pulse(t, ABP_DELAY), 1.3)
        pulseless = np.isin(self.model.trend.rhythm_names(t), ("vf", "asystole"))
        pressure = np.where(pulseless, PULSELESS_ABP, pressure)
        return 10.0 * pressure + 3.0 * _hash_noise(index, self.seed + 13)

    def _phase(self, t: np.ndarray) -> np.ndarray:
        """The breathing phase (radians, 2 pi a breath) at ``t``; it stands still in apnoea."""
        top = math.ceil(float(t[-1])) + 1
        have = len(self._resp_phase)
        if top >= have:
            secs = np.arange(have - 1, top + 30)  # half a minute ahead: one numpy pass
            rr = self.model.values(secs)["rr"] * (1.0 - self.model.trend.apnoea(secs))
            steps = 2 * np.pi * rr[:-1] / 60.0
            phase = self._resp_phase[-1] + np.cumsum(steps)
            # the seconds in which a new breath began (the phase passed a multiple of 2 pi)
            count = np.floor(np.concatenate([[self._resp_phase[-1]], phase]) / (2 * np.pi))
            new = np.nonzero(np.diff(count) > 0)[0] + have
            self._breath_starts.extend(new.astype(float).tolist())
            self._resp_phase.extend(phase.tolist())
        # interpolate on the stretch asked for only: the phase list grows a second at a time
        i0, i1 = max(math.floor(float(t[0])), 0), math.ceil(float(t[-1])) + 1
        return np.interp(t, np.arange(i0, i1 + 1), self._resp_phase[i0:i1 + 1])

    def last_breath(self, t: float) -> float:
        """When the last breath began, at or before ``t`` (to the second): the capnograph's
        apnoea timer starts from it."""
        self._phase(np.asarray([float(t)]))
        i = bisect.bisect_right(self._breath_starts, float(t)) - 1
        return self._breath_starts[max(i, 0)]

    def _breath_fraction(self, t: np.ndarray) -> np.ndarray:
        return (self._phase(t) / (2 * np.pi)) % 1.0

    def _resp(self, t: np.ndarray, index: np.ndarray) -> np.ndarray:
        f = self._breath_fraction(t)
        inhaling = f < INSPIRATION
        # the chest fills over the first third of the breath and empties over the rest
        volume = np.where(inhaling, 0.5 - 0.5 * np.cos(np.pi * f / INSPIRATION),
                          0.5 + 0.5 * np.cos(np.pi * (f - INSPIRATION) / (1 - INSPIRATION)))
        return 900.0 * (2 * volume - 1) + 20.0 * _hash_noise(index, self.seed + 5)

    def _co2(self, t: np.ndarray, index: np.ndarray) -> np.ndarray:
        f = self._breath_fraction(t)
        etco2 = self.model.values(t)["etco2"]
        g = (f - INSPIRATION) / (1 - INSPIRATION)
        # expiration: a steep upstroke to an alveolar plateau that still climbs a little;
        # inspiration: fresh gas washes the CO2 out at once
        plateau = etco2 * (1 - np.exp(-np.maximum(g, 0) / 0.07)) * (0.95 + 0.05 * g)
        co2 = np.where(f < INSPIRATION, etco2 * np.exp(-f / 0.02), plateau)
        co2 = np.where(self.model.trend.apnoea(t) > 0, 0.0, co2)
        return 10.0 * co2 + 4.0 * _hash_noise(index, self.seed + 17)
