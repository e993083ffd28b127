"""vitalsim: the bedside side of the vital-signs networking course.

The ground floor of the project: physiology and scenarios, simulated bedside devices, the wire
protocols as sans-I/O codecs, scapy layers, network impairment, and the one wait with a deadline
(:mod:`vitalsim.waiting`). It imports nothing else of ours: the station (``server``) and the
teaching code (``course``) build on it, never the other way round.
"""

__version__ = "0.1.0"
