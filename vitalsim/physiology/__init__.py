"""The patient: numerics, waveforms and NEWS2, driven by a scenario and a seed.

Time is always an argument (simulated seconds since admission); nothing here reads a clock.
"""

from .model import WAVE_RATES, Numerics, PatientModel
from .news2 import News2Result, news2

__all__ = ["WAVE_RATES", "News2Result", "Numerics", "PatientModel", "news2"]
