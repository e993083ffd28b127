"""A simulated stretch of one bed, as pandas frames, for analysis and plotting in the labs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vitalsim.physiology import WAVE_RATES, PatientModel
from vitalsim.scenarios import Scenario


@dataclass
class SimulatedStretch:
    numerics: list
    waves: dict[str, np.ndarray]
    start: float

    def to_dataframe(self) -> pd.DataFrame:
        """Numerics at 1 Hz, indexed by simulated time in seconds ("t")."""
        rows = [{"t": n.t, "hr": n.hr, "spo2": n.spo2, "rr": n.rr, "temp": n.temp,
                 "nibp_sys": n.nibp_sys, "nibp_dia": n.nibp_dia, "nibp_map": n.nibp_map,
                 "flags": int(n.flags), "rhythm": n.rhythm, "pvc_per_min": n.pvc_per_min,
                 "etco2": n.etco2, "awrr": n.awrr, "abp_sys": n.abp_sys, "abp_dia": n.abp_dia,
                 "abp_map": n.abp_map, "since_breath": n.since_breath} for n in self.numerics]
        return pd.DataFrame(rows).set_index("t")

    def waves_dataframe(self, channel: str) -> pd.DataFrame:
        """One waveform channel, indexed by simulated time in seconds ("t")."""
        samples = self.waves[channel]
        rate = WAVE_RATES[channel]
        first = round(self.start * rate)
        t = (first + np.arange(len(samples))) / rate
        return pd.DataFrame({channel: samples}, index=pd.Index(t, name="t"))


def simulate(scenario: Scenario | str, *, seed: int, duration: float,
             start: float = 0.0, waves: bool = True) -> SimulatedStretch:
    """Run one patient for ``duration`` simulated seconds from ``start``, as fast as it goes."""
    model = PatientModel(scenario, seed=seed)
    numerics = [model.numerics(float(t)) for t in np.arange(start, start + duration, 1.0)]
    out: dict[str, np.ndarray] = {}
    if waves:
        for channel, rate in WAVE_RATES.items():
            first = round(start * rate)
            out[channel] = model.waveform(channel, first, round(duration * rate))
    return SimulatedStretch(numerics, out, start)
