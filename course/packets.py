"""Packets for the labs: the recorded captures, captures as pandas tables, and a bounded sniff
that falls back to a recorded capture when this machine cannot sniff.

Sniffing needs root (a raw socket); a learner on a laptop usually has none. Every live capture in
a lab therefore goes through :func:`sniff_or_recorded`, which says which of the two it used, so
that the same cells teach the same thing either way.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from scapy.layers.inet import IP, TCP, UDP
from scapy.packet import Packet
from scapy.plist import PacketList
from scapy.utils import rdpcap

from course.constants import RECORDED_ALARM_PORT, RECORDED_TELEMETRY_PORT, RECORDINGS
from course.waiting import wait_until
from vitalsim.impair.live import capture_unavailable_reason, start_sniffer
from vitalsim.layers import AlarmFrame, Telemetry, bind_ports
from vitalsim.protocol.telemetry import HEADER, HEADER_FIELDS

#: the fixed ports the captures were recorded on (see course/recordings/README.md)

TELEMETRY_COLUMNS = ["packet", "time", "src", "sport", "device_id", "bed", "seq", "type", "flags",
                     "key_id", "sent_at_us", "hr", "spo2", "rr", "temp", "channel", "count"]
ALARM_COLUMNS = ["packet", "time", "sender", "sport", "dport", "frame", "alarm_id", "state",
                 "body"]


def recorded(name: str, *, folder: Path | None = None) -> PacketList:
    """The packets of ``course/recordings/NAME.pcap``, with the recording's ports bound to the
    course's layers, so that they dissect as Telemetry and AlarmFrame without further setup."""
    bind_ports(telemetry=RECORDED_TELEMETRY_PORT, alarms=RECORDED_ALARM_PORT)
    path = (folder or RECORDINGS) / f"{name.removesuffix('.pcap')}.pcap"
    if not path.exists():
        known = sorted(p.stem for p in (folder or RECORDINGS).glob("*.pcap"))
        raise FileNotFoundError(f"no capture {path}; recorded ones: {known}")
    return rdpcap(str(path))


def _start_time(packets: list[Packet]) -> float:
    return float(packets[0].time) if packets else 0.0


def telemetry_table(packets: Iterable[Packet]) -> pd.DataFrame:
    """One row per telemetry datagram: where it sits in the capture (``packet``, ``time`` in
    seconds from the first packet), who sent it, and its header and main body fields.

    Packets that are not telemetry are skipped; ``packet`` keeps their numbering, so a row can
    always be traced back to ``packets[row.packet]`` as evidence."""
    packets = list(packets)
    t0 = _start_time(packets)
    rows = []
    for number, pkt in enumerate(packets):
        if not pkt.haslayer(Telemetry):
            continue
        t = pkt[Telemetry]
        body = t.numerics if t.type == 1 else None
        wave = t.wave if t.type == 2 else None
        rows.append({
            "packet": number, "time": round(float(pkt.time) - t0, 6),
            "src": pkt[IP].src if IP in pkt else None,
            "sport": pkt[UDP].sport if UDP in pkt else None,
            "device_id": t.device_id, "bed": t.bed, "seq": t.seq,
            "type": t.sprintf("%type%"), "flags": int(t.flags), "key_id": t.key_id,
            "sent_at_us": t.sent_at_us,
            **{k: (round(float(getattr(body, k)), 2) if body is not None else None)
               for k in ("hr", "spo2", "rr", "temp")},
            "channel": wave.sprintf("%channel%") if wave is not None else None,
            "count": wave.count if wave is not None else None,
        })
    return pd.DataFrame(rows, columns=TELEMETRY_COLUMNS)


def alarm_table(packets: Iterable[Packet], *,
                alarm_port: int = RECORDED_ALARM_PORT) -> pd.DataFrame:
    """One row per alarm-channel frame (a TCP segment can carry several): the packet it came in,
    who sent it (the station listens on ``alarm_port``), its type, and the alarm it names."""
    packets = list(packets)
    t0 = _start_time(packets)
    rows = []
    for number, pkt in enumerate(packets):
        frame = pkt.getlayer(AlarmFrame)
        while isinstance(frame, AlarmFrame):
            try:
                message = frame.message()
            except ValueError:
                message = {}
            rows.append({
                "packet": number, "time": round(float(pkt.time) - t0, 6),
                "sender": "station" if pkt[TCP].sport == alarm_port else "device",
                "sport": pkt[TCP].sport, "dport": pkt[TCP].dport,
                "frame": frame.sprintf("%type%"), "alarm_id": message.get("alarm_id"),
                "state": message.get("state"), "body": frame.body.decode(errors="replace"),
            })
            frame = frame.payload
    return pd.DataFrame(rows, columns=ALARM_COLUMNS)


@dataclass(frozen=True)
class Sniffed:
    """What a bounded capture gave: the packets, and whether they were caught live just now or
    read from a recorded capture (and why)."""

    packets: PacketList
    live: bool
    source: str

    def __str__(self) -> str:
        return f"{len(self.packets)} packets, {self.source}"


async def sniff_or_recorded(bpf: str, *, count: int, seconds: float, recording: str,
                            iface: str = "lo") -> Sniffed:
    """Sniff ``iface`` with the BPF filter ``bpf`` until ``count`` packets or ``seconds`` have
    passed, whichever comes first; without root, read the recorded capture ``recording``.

    It awaits rather than blocks, so that the devices and the station running on the same
    event loop (a notebook's) keep sending while it listens. On loopback the kernel shows each
    packet twice (going out, coming in); the outgoing copy is ignored, as a station would."""
    reason = capture_unavailable_reason()
    if reason is not None:
        return Sniffed(recorded(recording), False,
                       f"recorded in course/recordings/{recording}.pcap, because "
                       f"{reason.split(';')[0]}")
    try:
        sniffer = start_sniffer(bpf, iface=iface, count=count, store=True)
    except (OSError, RuntimeError) as exc:
        return Sniffed(recorded(recording), False,
                       f"recorded in course/recordings/{recording}.pcap (could not sniff: {exc})")
    try:
        with contextlib.suppress(TimeoutError):  # time is up: what it caught is the capture
            await wait_until(lambda: not sniffer.running, timeout=seconds,
                             what=f"{count} packets")
    finally:
        if sniffer.running:
            sniffer.stop()
        else:
            sniffer.join(timeout=1.0)
    packets = sniffer.results if sniffer.results is not None else PacketList()
    return Sniffed(packets, True, f"sniffed live on {iface} ({bpf!r})")


async def get_json(url: str) -> object:
    """GET a JSON document from the station's HTTP API without blocking the notebook's event
    loop (which is also the station's: a blocking request would wait on itself forever)."""
    from tornado.httpclient import AsyncHTTPClient

    response = await AsyncHTTPClient().fetch(url)
    return json.loads(response.body)


def _plain(value: object) -> object:
    """A field's value as a plain number, whatever field class produced it (a FlagsField gives
    a FlagValue, an enum field its number), so that two layers' readings can be compared."""
    try:
        return int(value) if not isinstance(value, float | bytes | str) else value
    except (TypeError, ValueError):
        return value


def header_differences(layer: type[Packet], packets: Iterable[Packet], *,
                       limit: int = 5) -> list[str]:
    """Where ``layer`` (a learner's telemetry header) disagrees with :mod:`vitalsim.layers` on
    captured datagrams: it must read the same header fields (all eleven of version 3, ``boot_id``
    included) from the same bytes, and build the same 34 bytes from those fields. Up to
    ``limit`` lines such as ``"packet 3, seq: yours 0, vitalsim.layers 1"``; an empty list means
    they agree."""
    names = [f.name for f in getattr(layer, "fields_desc", [])]
    absent = [name for name, _ in HEADER_FIELDS if name not in names]
    if absent:
        return [f"your layer has no field named {name!r}" for name in absent][:limit]
    out: list[str] = []
    for number, pkt in enumerate(packets):
        if len(out) >= limit:
            break
        if not pkt.haslayer(Telemetry):
            continue
        course = pkt[Telemetry]
        data = bytes(course)
        fields = {name: _plain(course.getfieldval(name)) for name, _ in HEADER_FIELDS}
        try:
            mine = layer(data)
        except Exception as exc:  # a learner's layer that cannot dissect is feedback
            out.append(f"packet {number}: dissecting raised {type(exc).__name__}: {exc}")
            continue
        for name, expected in fields.items():
            got = _plain(mine.getfieldval(name))
            if got != expected:
                out.append(f"packet {number}, {name}: yours {got!r}, vitalsim.layers {expected!r}")
        try:
            built = bytes(layer(**fields))[: HEADER.size]
        except Exception as exc:
            out.append(f"packet {number}: building from fields raised {type(exc).__name__}: {exc}")
            continue
        if built != data[: HEADER.size]:
            out.append(f"packet {number}: built from its fields, yours gives {built.hex(' ')}, "
                       f"the capture holds {data[: HEADER.size].hex(' ')}")
    return out[:limit]
