"""Reading an HL7-over-MLLP capture (``hl7-mllp.pcap``) two ways, for Lab 07.

:func:`mllp_exchange` does it the course's way: scapy reads the packets, each TCP connection's
bytes in each direction are put back in order, and the MLLP deframer
(:mod:`vitalsim.protocol.mllp`) cuts them into messages, which python-hl7 reads. :func:`tshark_hl7`
asks Wireshark's own HL7 dissector, a tool nobody here wrote, for the same, when tshark is
installed. The two should agree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from scapy.all import TCP, rdpcap

from course.constants import RECORDED_HL7_PORT
from server import hl7_messages
from vitalsim.protocol.mllp import MllpDeframer


def _segments(path: str | Path, port: int) -> Iterator[tuple[int, float, TCP, str, int]]:
    """Each TCP segment of the capture: its frame number (from 1), its time from the first
    packet, the segment, which side sent it ("engine" on ``port``, or "station") and the
    connection (the station's port)."""
    packets = rdpcap(str(path))
    start = float(packets[0].time) if packets else 0.0
    for number, pkt in enumerate(packets, start=1):
        if TCP in pkt:
            tcp = pkt[TCP]
            side = "engine" if tcp.sport == port else "station"
            conn = tcp.dport if side == "engine" else tcp.sport
            yield number, round(float(pkt.time) - start, 3), tcp, side, conn


def tcp_events(path: str | Path, port: int = RECORDED_HL7_PORT) -> pd.DataFrame:
    """Every packet of the capture: time, which side sent it, TCP flags, payload length."""
    return pd.DataFrame([{"frame": number, "t": t, "from": side, "client_port": conn,
                          "flags": str(tcp.flags), "payload": len(bytes(tcp.payload))}
                         for number, t, tcp, side, conn in _segments(path, port)])


def mllp_exchange(path: str | Path, port: int = RECORDED_HL7_PORT) -> pd.DataFrame:
    """Each HL7 message in the capture, in order: the frame that completed it, which side
    sent it, the connection (the station's port), its type, its control id (MSH-10), and for
    an answer its MSA-1 code and the control id it answers (MSA-2)."""
    deframers: dict[tuple[int, str], MllpDeframer] = {}
    next_seq: dict[tuple[int, str], int] = {}
    rows = []
    for number, t, tcp, side, conn in _segments(path, port):
        key = (conn, side)
        payload = bytes(tcp.payload)
        if "S" in str(tcp.flags):
            next_seq[key] = tcp.seq + 1
            deframers[key] = MllpDeframer()
            continue
        if not payload or key not in deframers:
            continue
        if tcp.seq != next_seq[key]:  # a retransmission (or a segment out of order): once
            continue
        next_seq[key] = tcp.seq + len(payload)
        for raw in deframers[key].feed(payload):
            msg = hl7_messages.parse(raw)
            row = {"frame": number, "t": t, "from": side,
                   "connection": conn, "type": hl7_messages.message_type(msg),
                   "control_id": hl7_messages.control_id(msg), "msa": "", "answers": ""}
            if side == "engine":
                row["msa"], row["answers"], _ = hl7_messages.ack_of(msg)
            rows.append(row)
    return pd.DataFrame(rows, columns=["frame", "t", "from", "connection", "type",
                                       "control_id", "msa", "answers"])


def tshark_reason() -> str | None:
    """Why tshark cannot be asked here, or None when it can."""
    if shutil.which("tshark") is None:
        return "tshark is not installed (apt-get install tshark)"
    return None


def tshark_hl7(path: str | Path, port: int = RECORDED_HL7_PORT) -> list[list[str]]:
    """Wireshark's HL7 dissector over the capture: for each HL7 frame, its number, TCP source
    port, message type, event and segments. Run with an empty configuration directory, so
    that nobody's Wireshark preferences change what it says. RuntimeError if tshark fails."""
    with tempfile.TemporaryDirectory() as config:
        env = {**os.environ, "WIRESHARK_CONFIG_DIR": config, "XDG_CONFIG_HOME": config}
        done = subprocess.run(
            ["tshark", "-r", str(path), "-d", f"tcp.port=={port},hl7", "-Y", "hl7",
             "-T", "fields", "-E", "separator=/t", "-e", "frame.number", "-e", "tcp.srcport",
             "-e", "hl7.message.type", "-e", "hl7.event.type", "-e", "hl7.segment"],
            capture_output=True, text=True, env=env, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"tshark failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return [line.split("\t") for line in done.stdout.splitlines() if line.strip()]
