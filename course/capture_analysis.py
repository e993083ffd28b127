"""Reading captures: the evidence of TCP's retransmissions and of UDP's gaps.

:func:`tcp_retransmissions` is the course's one retransmission finder: lab 02's checks compare a
learner's answer with it, and :func:`course.tcp_evidence.retransmission_table` is built on it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from scapy.all import IP, TCP, UDP, Packet, rdpcap

from vitalsim.layers import Telemetry


@dataclass(frozen=True)
class Retransmission:
    flow: tuple[str, int, str, int]  # (src, sport, dst, dport)
    seq: int  # TCP sequence number of the segment
    length: int  # payload bytes
    times_sent: int
    first_packet: int  # index in the capture of its first sending
    packets: tuple[int, ...] = ()  # index in the capture of every sending, in order


def _packets(capture: str | Path | Iterable[Packet]) -> list[Packet]:
    return list(rdpcap(str(capture))) if isinstance(capture, str | Path) else list(capture)


def tcp_retransmissions(capture: str | Path | Iterable[Packet]) -> list[Retransmission]:
    """Segments with data sent more than once: the same flow and sequence number."""
    packets = _packets(capture)
    sendings: dict[tuple, list[int]] = {}
    length: dict[tuple, int] = {}
    for i, pkt in enumerate(packets):
        if IP in pkt and TCP in pkt and len(pkt[TCP].payload) > 0:
            key = (pkt[IP].src, pkt[TCP].sport, pkt[IP].dst, pkt[TCP].dport, pkt[TCP].seq)
            sendings.setdefault(key, []).append(i)
            length.setdefault(key, len(pkt[TCP].payload))
    return [Retransmission(k[:4], k[4], length[k], len(at), at[0], tuple(at))
            for k, at in sendings.items() if len(at) > 1]


def telemetry_gaps(capture: str | Path | Iterable[Packet]) -> dict[int, list[int]]:
    """Per device, the telemetry sequence numbers missing between the first and last seen."""
    seqs: dict[int, set[int]] = {}
    for pkt in _packets(capture):
        if UDP in pkt and pkt.haslayer(Telemetry):
            t = pkt[Telemetry]
            seqs.setdefault(t.device_id, set()).add(t.seq)
    return {dev: sorted(set(range(min(s), max(s) + 1)) - s) for dev, s in seqs.items()}


def longest_gap(capture: str | Path | Iterable[Packet]) -> tuple[int, int, int]:
    """The longest run of consecutive sequence numbers one device lost: ``(device_id, first
    missing, last missing)``; of equally long runs, the device with the highest id, and its
    earliest run. What a trace exercise asks about, taken from the capture itself, so that each
    student's own capture has its own question and its own answer."""
    runs = []
    for device, missing in telemetry_gaps(capture).items():
        start = None
        for i, seq in enumerate(missing):
            if start is None or seq != missing[i - 1] + 1:
                start = seq
            runs.append((seq - start + 1, device, -start, start, seq))
    if not runs:
        raise ValueError("no device lost a datagram in this capture")
    _, device, _, first, last = max(runs)
    return device, first, last
