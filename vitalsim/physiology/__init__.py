"""The patient: numerics, waveforms and NEWS2, driven by a scenario and a seed.

Time is always an argument (simulated seconds since admission); nothing here reads a clock.
"""

from .model import Numerics, PatientModel
from .news2 import News2Result, news2
from .waves import WAVE_RATES

__all__ = ["WAVE_RATES", "News2Result", "Numerics", "PatientModel", "news2"]
