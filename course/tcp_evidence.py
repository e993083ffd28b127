"""Reading an alarm-channel capture for lab 02: each TCP segment as a row, with what it carried,
and each retransmitted segment with the packet numbers and times of its sendings.

Pure functions over a list of scapy packets (``rdpcap(...)``), so that the recorded capture gives
the same table on every machine, and a live one is read the same way.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
from scapy.all import IP, TCP, Packet

from course.capture_analysis import tcp_retransmissions
from course.constants import RECORDED_ALARM_PORT
from vitalsim.protocol.alarm_channel import FrameType


def _flags(tcp: Packet) -> str:
    return str(tcp.flags)


def carried(payload: bytes) -> str:
    """The alarm-channel frames in one segment's payload, in words: ``ALARM 1001-7``, ``ACK
    1001-7``, ``HELLO bed 1``, ``HEARTBEAT``; ``…`` for a frame cut by the segment's end."""
    words, at = [], 0
    while at + 5 <= len(payload):
        length, ftype = struct.unpack_from("!IB", payload, at)
        body = payload[at + 5 : at + 4 + length]
        if length < 1 or at + 4 + length > len(payload):
            words.append("…")
            break
        try:
            name, fields = FrameType(ftype).name, json.loads(body)
        except (ValueError, UnicodeDecodeError):
            words.append(f"type {ftype}?")
        else:
            if "alarm_id" in fields:
                words.append(f"{name} {fields['alarm_id']}")
            elif name == "HELLO":
                words.append(f"HELLO bed {fields.get('bed')}")
            else:
                words.append(name)
        at += 4 + length
    if 0 < len(payload) - at < 5:
        words.append("…")
    return ", ".join(words)


def segment_table(packets: Iterable[Packet], *,
                  station_port: int = RECORDED_ALARM_PORT) -> pd.DataFrame:
    """One row per TCP packet, indexed by its number in the capture (from 0): seconds since the
    first packet, which side sent it, flags, seq, ack, payload length and what it carried."""
    rows, t0 = [], None
    for i, pkt in enumerate(packets):
        if IP not in pkt or TCP not in pkt:
            continue
        tcp = pkt[TCP]
        t0 = float(pkt.time) if t0 is None else t0
        payload = bytes(tcp.payload)
        rows.append({"no": i, "t": round(float(pkt.time) - t0, 3),
                     "from": "station" if tcp.sport == station_port else "bedside",
                     "port": tcp.dport if tcp.sport == station_port else tcp.sport,
                     "flags": _flags(tcp), "seq": tcp.seq, "ack": tcp.ack, "len": len(payload),
                     "carries": carried(payload)})
    columns = ["no", "t", "from", "port", "flags", "seq", "ack", "len", "carries"]
    return pd.DataFrame(rows, columns=columns).set_index("no")


def retransmission_table(packets: Iterable[Packet], *,
                         station_port: int = RECORDED_ALARM_PORT) -> pd.DataFrame:
    """One row per segment with data sent more than once (same connection, same seq): which side
    sent it, its seq and length, the packet numbers of its sendings, the milliseconds between the
    first and the second, and what it carried."""
    packets = list(packets)
    seg = segment_table(packets, station_port=station_port)
    rows = []
    for found in tcp_retransmissions(packets):
        group = seg.loc[list(found.packets)]
        times = group["t"].tolist()
        rows.append({"from": group["from"].iloc[0], "port": group["port"].iloc[0],
                     "seq": found.seq, "len": found.length,
                     "sent at packets": ", ".join(str(n) for n in group.index),
                     "ms until resent": round((times[1] - times[0]) * 1000),
                     "carries": group["carries"].iloc[0]})
    columns = ["from", "port", "seq", "len", "sent at packets", "ms until resent", "carries"]
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class HeadOfLine:
    """One alarm held back behind a lost one, on one connection, as packet numbers of the capture:
    ``lost`` (the segment's sendings, the first lost), ``behind`` (the next segment, which
    arrived first), ``dup_ack`` (the station's duplicate ACK for the hole, or None), ``jump`` (the
    station's ACK that covers both at once) and ``answer`` (the station's segment with both
    application ACKs)."""

    port: int
    lost: tuple[int, ...]
    behind: int
    dup_ack: int | None
    jump: int
    answer: int | None
    seq: int  # the lost segment's
    length: int
    behind_length: int
    acked_to: int  # the jump's ack number
    lost_carries: str
    behind_carries: str


def head_of_line(packets: Iterable[Packet], *,
                 station_port: int = RECORDED_ALARM_PORT) -> HeadOfLine | None:
    """The first bedside segment with data that was lost and sent again while the next segment
    of its connection got through before it: what the station's kernel held back until the hole
    was filled. None if the capture shows no such thing."""
    packets = list(packets)
    seg = segment_table(packets, station_port=station_port)
    for found in tcp_retransmissions(packets):
        if found.flow[3] != station_port:
            continue  # the station's own segments
        port, seq, length = found.flow[1], found.seq, found.length
        conn = seg[seg.port == port]
        after = conn[conn.index > found.first_packet]
        nxt = after[(after["from"] == "bedside") & (after.seq == seq + length) & (after.len > 0)]
        if nxt.empty or nxt.index[0] > found.packets[-1]:
            continue  # the next segment was sent only once the hole was filled
        behind = int(nxt.index[0])
        behind_length = int(nxt["len"].iloc[0])
        acks = after[(after["from"] == "station") & (after.index > behind)]
        moved = acks[acks.ack > seq]
        if moved.empty or moved.ack.iloc[0] < seq + length + behind_length:
            continue  # the station ACKed the lost one alone: the next was not waiting
        jump = int(moved.index[0])
        dups = acks[(acks.ack == seq) & (acks.index < jump)]
        name = nxt["carries"].iloc[0]
        answers = conn[(conn["from"] == "station") & (conn.index >= jump) & (conn.len > 0)
                       & conn.carries.str.contains(name.replace("ALARM", "ACK"), regex=False)]
        return HeadOfLine(
            port=int(port), lost=found.packets, behind=behind,
            dup_ack=int(dups.index[0]) if not dups.empty else None, jump=jump,
            answer=int(answers.index[0]) if not answers.empty else None, seq=seq, length=length,
            behind_length=behind_length, acked_to=int(moved.ack.iloc[0]),
            lost_carries=seg.loc[found.first_packet, "carries"], behind_carries=name)
    return None
