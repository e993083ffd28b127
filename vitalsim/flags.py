"""Device status flags, shared by the physiology model (which raises sensor faults) and the
telemetry protocol (which carries them on the wire as one byte)."""

from __future__ import annotations

import enum


class Flags(enum.IntFlag):
    """What a bedside monitor knows about the quality of its own signals."""

    NONE = 0
    PROBE_OFF = 0x01  # SpO2 finger probe off: no SpO2, flat pleth
    LEAD_OFF = 0x02  # an ECG electrode off: no ECG, no ECG-derived HR
    ARTIFACT = 0x04  # motion artefact: the signals are there but disturbed, numbers fooled
    #: HR is the pulse rate counted on the pleth, not the ECG's (leads off): telemetry v3
    HR_FROM_PLETH = 0x08
