"""Can this machine capture packets live? The one question every live-capture cell asks first.

Sniffing needs root (raw sockets), and scapy needs libpcap to compile a capture filter such as
``udp port 5005``; without it, scapy fails only once the sniffer starts ("libpcap is not
available"), deep inside a lab. Asking here first lets a lab say why in plain words and fall back
to the recorded pcaps in ``captures/``, which teach the same thing.
"""

from __future__ import annotations

import ctypes.util
import os
from pathlib import Path

RECORDED = Path(__file__).resolve().parents[2] / "captures"


def capture_unavailable_reason() -> str | None:
    """Why live capture cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return ("sniffing packets needs root (in CI, or with sudo on Linux); "
                f"without root, use the recorded captures in {RECORDED}")
    if ctypes.util.find_library("pcap") is None:
        return ("scapy needs libpcap to filter what it captures (apt-get install libpcap0.8); "
                f"meanwhile, use the recorded captures in {RECORDED}")
    return None
