"""Can this machine capture packets live? The one question every live-capture cell asks first.

Sniffing needs root (raw sockets), and scapy needs libpcap to compile a capture filter such as
``udp port 5005``; without it, scapy fails only once the sniffer starts ("libpcap is not
available"), deep inside a lab. Asking here first lets a lab say why in plain words and fall back
to the course's recorded pcaps (``course/recordings/``), which teach the same thing.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import os
import socket
import threading
from typing import Any

#: where a learner who cannot capture is sent: the course's recordings (vitalsim names them,
#: and never imports the course)
RECORDED_HINT = "the course's recorded captures (course/recordings/)"
SOL_PACKET, PACKET_IGNORE_OUTGOING = 263, 23  # Linux <linux/if_packet.h>
SO_RCVBUFFORCE = 33  # Linux: root may exceed net.core.rmem_max


def capture_unavailable_reason() -> str | None:
    """Why live capture cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return ("sniffing packets needs root (in CI, or with sudo on Linux); "
                f"without root, use {RECORDED_HINT}")
    if ctypes.util.find_library("pcap") is None:
        return ("scapy needs libpcap to filter what it captures (apt-get install libpcap0.8); "
                f"meanwhile, use {RECORDED_HINT}")
    return None


def start_sniffer(bpf: str, *, iface: str = "lo", timeout: float = 5.0, **options: Any) -> Any:
    """A scapy ``AsyncSniffer`` on ``iface`` with the BPF filter ``bpf``, returned only once it
    is really listening (a packet sent before that would be missed). ``options`` go to
    ``AsyncSniffer`` (``count``, ``store``, ``prn``...). Ask
    :func:`capture_unavailable_reason` first.

    On loopback the kernel shows each packet twice, going out and coming in: only the incoming
    copy is kept, so that the capture reads like one from any other interface. The socket's
    buffer is roomy (8 MiB), because a burst on loopback (64 KiB segments) outruns scapy's
    dissection, and the kernel would drop what comes after it, such as the closing FINs.
    """
    from scapy.all import AsyncSniffer, conf

    sock = conf.L2listen(iface=iface, filter=bpf)
    if iface == "lo":
        sock.ins.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    with contextlib.suppress(OSError):
        sock.ins.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
    ready = threading.Event()
    sniffer = AsyncSniffer(opened_socket=sock, started_callback=ready.set, **options)
    sniffer.start()
    if not ready.wait(timeout):
        with contextlib.suppress(Exception):
            sniffer.stop()
        sock.close()
        raise RuntimeError(f"the sniffer on {iface} did not start within {timeout} s")
    return sniffer
