"""What the course's codec reads from an alarm-channel capture, beside what tshark shows with the
course's dissector: the agreement tests/test_wireshark.py checks for the committed captures and
tests/test_traces.py for each student's generated ones."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.utils import rdpcap

from course.wireshark import tshark_fields
from vitalsim.layers import DEFAULT_ALARM_PORT
from vitalsim.protocol.alarm_channel import (
    FRAME_HEAD,
    MAX_FRAME,
    FrameDecoder,
    FrameType,
    encode_alarm_frame,
)

ROOT = Path(__file__).resolve().parent.parent
DISSECTOR = ROOT / "wireshark" / "vitalsim.lua"
ALARM_PORT = DEFAULT_ALARM_PORT
ALARM_FIELDS = ["vitalsim.alarm.length", "vitalsim.alarm.type", "vitalsim.alarm.body"]


def fields(capture: Path, names: list[str], display_filter: str | None = None,
           dissector: Path = DISSECTOR) -> dict[int, dict[str, list[str]]]:
    """tshark's values per packet, by frame number (from 1)."""
    return {int(p["frame.number"][0]): p
            for p in tshark_fields(capture, names, display_filter, dissector=dissector)}


def opens_a_frame(data: bytes) -> bool:
    """Does a connection's first data start an alarm frame (a length within the bound, a
    frame type, a JSON object)? How the dissector tells the alarm channel on any port."""
    if len(data) < FRAME_HEAD.size + 1:
        return False
    length, ftype = FRAME_HEAD.unpack_from(data)
    return 2 <= length <= MAX_FRAME and ftype in set(FrameType) and data[5:6] == b"{"


def codec_alarm_frames(packets) -> dict[int, list[tuple[int, int, dict]]]:
    """Per packet number (from 1), the alarm frames it completes: each TCP direction's bytes
    in sequence order (a retransmission adds only what was not there yet), fed to the course's
    FrameDecoder; each frame as (length, type, body)."""
    streams: dict[tuple, dict] = {}
    out: dict[int, list[tuple[int, int, dict]]] = {}
    alarm_channel: dict[frozenset, bool] = {}
    for number, pkt in enumerate(packets, 1):
        if TCP not in pkt:
            continue
        tcp = pkt[TCP]
        key = (pkt[IP].src, tcp.sport, pkt[IP].dst, tcp.dport)
        connection = frozenset([key[:2], key[2:]])
        if bytes(tcp.payload) and connection not in alarm_channel:
            alarm_channel[connection] = ALARM_PORT in (tcp.sport, tcp.dport) or \
                opens_a_frame(bytes(tcp.payload))
        if not alarm_channel.get(connection, ALARM_PORT in (tcp.sport, tcp.dport)):
            continue
        if tcp.flags.S:
            streams[key] = {"next": tcp.seq + 1, "decoder": FrameDecoder()}
            continue
        payload = bytes(tcp.payload)
        if not payload:
            continue
        stream = streams.setdefault(key, {"next": tcp.seq, "decoder": FrameDecoder()})
        skip = (stream["next"] - tcp.seq) % 2**32
        if skip >= len(payload) or skip >= 2**31:
            continue  # nothing new: a retransmission (or ahead of a gap, which tshark shows later)
        stream["next"] = (tcp.seq + len(payload)) % 2**32
        for event in stream["decoder"].feed(payload[skip:]):
            # the course's encoder writes each event as the devices and the station send it
            length, ftype = FRAME_HEAD.unpack_from(encode_alarm_frame(event))
            out.setdefault(number, []).append((length, ftype, asdict(event)))
    return out


def alarm_disagreements(capture: Path, shown: dict | None = None) -> list[str]:
    packets = rdpcap(str(capture))
    expected = codec_alarm_frames(packets)
    shown = shown or fields(capture, ALARM_FIELDS)
    out = []
    for number in range(1, len(packets) + 1):
        got = shown[number]
        frames = list(zip(*(got.get(f, []) for f in ALARM_FIELDS), strict=False))
        tshark = [(int(length), int(ftype), json.loads(body)) for length, ftype, body in frames]
        if tshark != expected.get(number, []):
            out.append(f"packet {number}: tshark {tshark}, codec {expected.get(number, [])}")
    return out
