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


@dataclass(frozen=True)
class Restart:
    """The landmarks of an alarm channel across a station restart, as packet numbers of the
    capture: the first connection's closing (``closing``: the station's FIN first), the device's
    refused attempts (``refused``: each SYN's number and seconds since the attempt before, the
    first counted from the device's FIN), the accepted SYN of the new connection (``reconnect``
    from ``new_port``), the packet with the second HELLO (``hello``, with the alarms that waited
    behind it in ``waiting``) and the station's segment that ACKs them (``acked``)."""

    first_port: int
    closing: tuple[int, ...]
    refused: tuple[tuple[int, float], ...]
    reconnect: int
    new_port: int
    hello: int
    waiting: tuple[str, ...]
    acked: int | None


def restart_landmarks(packets: Iterable[Packet], *,
                      station_port: int = RECORDED_ALARM_PORT) -> Restart:
    """Read a station restart off an alarm-channel capture (one device): see :class:`Restart`.
    Raises ValueError, naming what is missing, for a capture that shows no restart."""
    seg = segment_table(list(packets), station_port=station_port)
    syns = seg[seg["flags"].str.contains("S") & ~seg["flags"].str.contains("A")]
    if syns.empty:
        raise ValueError("no SYN towards the station: not an alarm-channel capture")
    first_port = int(syns.port.iloc[0])
    first = seg[seg.port == first_port]
    fins = first[first["flags"].str.contains("F")]
    if fins.empty:
        raise ValueError(f"the first connection (port {first_port}) never closes: no restart")
    closing = tuple(int(n) for n in first.index if n >= fins.index[0])
    resets = seg[seg["flags"].str.contains("R")]
    refused, before = [], float(seg.loc[fins.index[-1], "t"])
    for number, row in syns.iloc[1:].iterrows():
        if row.port not in set(resets.port):
            break
        refused.append((int(number), round(float(row.t) - before, 3)))
        before = float(row.t)
    later = syns[(syns.index > closing[-1]) & ~syns.port.isin(resets.port)]
    if later.empty:
        raise ValueError("no accepted connection after the first one closed")
    reconnect, new_port = int(later.index[0]), int(later.port.iloc[0])
    second = seg[(seg.port == new_port) & (seg.index > reconnect)]
    hellos = second[second.carries.str.startswith("HELLO")]
    if hellos.empty:
        raise ValueError(f"the new connection (port {new_port}) carries no HELLO")
    hello = int(hellos.index[0])
    waiting = tuple(w.removeprefix("ALARM ") for w in hellos.carries.iloc[0].split(", ")
                    if w.startswith("ALARM "))
    acks = second[(second["from"] == "station") & (second.index > hello)
                  & second.carries.str.contains("ACK ", regex=False)]
    return Restart(first_port, closing, tuple(refused), reconnect, new_port, hello, waiting,
                   int(acks.index[0]) if not acks.empty else None)


def short_id(alarm_id: str) -> str:
    """``1002-1795917457979821-2c`` as ``1002-…-2c``: the boot id is the same in every alarm of
    one run of a device, and long."""
    parts = alarm_id.split("-")
    return f"{parts[0]}-…-{parts[-1]}" if len(parts) == 3 else alarm_id


def shorten(carries: str) -> str:
    """What a segment carries, each alarm id shortened by :func:`short_id`."""
    return ", ".join(" ".join(short_id(w) for w in item.split(" "))
                     for item in carries.split(", "))


def head_of_line_story(packets: Iterable[Packet], hol: HeadOfLine, *,
                       station_port: int = RECORDED_ALARM_PORT) -> str:
    """:func:`head_of_line`'s finding told packet by packet, with the capture's own numbers:
    what lab 02 walks through, for whichever capture it reads."""
    packets = list(packets)
    seg = segment_table(packets, station_port=station_port)
    lost, behind = shorten(hol.lost_carries), shorten(hol.behind_carries)
    events = [(hol.lost[0], f"the device sends `{lost}`, seq {hol.seq}, {hol.length} bytes. "
                            "No ACK for it comes back.")]
    for before, again in zip(hol.lost, hol.lost[1:], strict=False):
        ms = round((float(packets[again].time) - float(packets[before].time)) * 1000)
        why = ("the retransmission timer fired (about 200 ms is Linux's shortest, and it "
               "doubles each time)") if ms >= 190 else (
               "sooner than any timer: a duplicate ACK that SACKs the bytes after the hole "
               "showed the loss")
        events.append((again, f"the same seq and length, {ms} ms after packet {before}: a "
                              f"retransmission; {why}."))
    events.append((hol.behind, f"the next alarm, `{behind}`, at seq {hol.seq + hol.length} = "
                               f"{hol.seq} + {hol.length}. It arrives, but the station's kernel "
                               f"cannot hand it to the application: bytes {hol.seq} to "
                               f"{hol.seq + hol.length - 1} are still missing, and TCP delivers "
                               "in order."))
    if hol.dup_ack is not None:
        events.append((hol.dup_ack, f"the station's kernel says so: a duplicate ACK, still ack "
                                    f"{hol.seq}."))
    both = hol.seq + hol.length + hol.behind_length
    more = "" if hol.acked_to == both else f" (and on, to {hol.acked_to}: more had arrived)"
    events.append((hol.jump, f"the ACK jumps to {both} = {hol.seq + hol.length} + "
                             f"{hol.behind_length}{more}, covering both alarms at once."))
    if hol.answer is not None:
        events.append((hol.answer, "Only now does the station's application read the alarms, "
                                   "journal them, and send their application-level ACKs: "
                                   f"{seg.loc[hol.answer, 'len']} bytes, `"
                                   f"{shorten(seg.loc[hol.answer, 'carries'])}`."))
    lines: list[str] = []
    for number, text in sorted(events, key=lambda e: e[0]):  # stable: the jump before the answer
        if lines and lines[-1].startswith(f"* {number}: "):
            lines[-1] += " The same segment: " + text
        else:
            lines.append(f"* {number}: {text}")
    waited = round((float(packets[hol.jump].time) - float(packets[hol.behind].time)) * 1000, 1)
    lines.append(f"`{behind}` was in the station's kernel at packet {hol.behind} and reached the "
                 f"application at packet {hol.jump}, {waited} ms later: it waited behind the lost "
                 "one. That is head-of-line blocking.")
    return "\n".join(lines)


@dataclass(frozen=True)
class StationResend:
    """A segment of the station's (application ACKs) sent more than once: its sendings, and the
    bedside's TCP ACKs for it that the drop rule lost on their way in (each followed by another
    sending)."""

    port: int
    seq: int
    length: int
    carries: str
    packets: tuple[int, ...]
    lost_acks: tuple[int, ...]
    acked_at: int | None  # the bedside's ACK of the last sending


def station_resend(packets: Iterable[Packet], *,
                   station_port: int = RECORDED_ALARM_PORT) -> StationResend | None:
    """The first segment with data that the *station* sent more than once (one carrying an
    application ACK if there is one), or None."""
    packets = list(packets)
    seg = segment_table(packets, station_port=station_port)
    found = [r for r in tcp_retransmissions(packets) if r.flow[1] == station_port]
    found.sort(key=lambda r: ("ACK " not in seg.loc[r.first_packet, "carries"], r.first_packet))
    if not found:
        return None
    first = found[0]
    port, end = first.flow[3], first.seq + first.length
    acks = seg[(seg["from"] == "bedside") & (seg.port == port) & (seg.ack >= end)
               & (seg.index > first.first_packet)]
    lost = tuple(int(n) for n in acks.index if n < first.packets[-1])
    last = [int(n) for n in acks.index if n > first.packets[-1]]
    return StationResend(int(port), first.seq, first.length,
                         seg.loc[first.first_packet, "carries"], first.packets, lost,
                         last[0] if last else None)
