"""vitalsim: the bedside side of the vital-signs networking course.

The ground floor of the project: physiology and scenarios, simulated bedside devices, the wire
protocols as sans-I/O codecs, scapy layers, network impairment and helpers for the labs. It imports
nothing from ``server``.
"""

__version__ = "0.1.0"
