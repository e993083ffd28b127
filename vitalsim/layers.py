"""Scapy layers for the course's wire formats: the telemetry datagram and the alarm-channel frame.

The telemetry fields are generated from the codec's own layout tables
(:data:`~vitalsim.protocol.telemetry.HEADER_FIELDS` and friends), so scapy and the codec read the
same bytes the same way; the tests check that, in both directions. Importing this module binds the
default ports (UDP 5005 for telemetry, TCP 5006 for alarms); :func:`bind_ports` adds others, such
as the ephemeral ports of a lab's station.

    >>> from vitalsim.layers import Telemetry, TelemetryNumerics
    >>> pkt = Telemetry(bed=3, device_id=1003, seq=7, sent_at_us=1_700_000_000_000_000,
    ...                 numerics=TelemetryNumerics(hr=180, spo2=99, rr=14, temp=36.9))
    >>> from vitalsim.protocol import decode
    >>> decode(bytes(pkt)).hr
    180.0
"""

from __future__ import annotations

import json
import math
import struct

from scapy.fields import (
    ByteEnumField,
    ByteField,
    ConditionalField,
    Field,
    FieldLenField,
    FieldListField,
    FlagsField,
    IEEEDoubleField,
    IEEEFloatField,
    IntField,
    LongField,
    PacketLenField,
    ShortField,
    SignedShortField,
    StrLenField,
    XShortField,
    XStrFixedLenField,
)
from scapy.layers.inet import TCP, UDP
from scapy.packet import Packet, bind_layers

from .protocol.alarm_channel import FRAME_HEAD, FrameType
from .protocol.telemetry import (
    CHANNELS,
    HEADER,
    HEADER_FIELDS,
    MAGIC,
    NUMERICS_FIELDS,
    TAG_LEN,
    TYPE_NUMERICS,
    TYPE_WAVE,
    VERSION,
    WAVE_FIELDS,
)
from .rhythms import RHYTHM_OF_CODE

DEFAULT_TELEMETRY_PORT = 5005
DEFAULT_ALARM_PORT = 5006

_FIELD_FOR_CODE = {"B": ByteField, "H": ShortField, "I": IntField, "Q": LongField,
                   "f": IEEEFloatField, "d": IEEEDoubleField}
_FLAG_NAMES = ["probe_off", "lead_off", "artifact", "hr_from_pleth", "bit4", "bit5", "bit6",
               "bit7"]


def _fields(table: tuple[tuple[str, str], ...], special: dict[str, Field]) -> list[Field]:
    out = []
    for name, code in table:
        if name in special:
            out.append(special[name])
        else:
            default = math.nan if code in "fd" else 0
            out.append(_FIELD_FOR_CODE[code](name, default))
    return out


def _body_is(pkt: Packet, mtype: int, field: str) -> bool:
    """Which body a datagram has: from ``type`` when it is set (dissecting), else from which
    body the learner filled in (building)."""
    declared = pkt.fields.get("type", pkt.default_fields.get("type"))
    if declared is not None:
        return declared == mtype
    return pkt.fields.get(field) is not None


class TelemetryNumerics(Packet):
    """Body of a numerics datagram: NaN means "not available"."""

    name = "TelemetryNumerics"
    fields_desc = _fields(NUMERICS_FIELDS, {
        "rhythm": ByteEnumField("rhythm", 0, {0: "not_analysed", **RHYTHM_OF_CODE}),
        "pvc_per_min": ByteField("pvc_per_min", 255),
    })

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


class TelemetryWave(Packet):
    """Body of a waveform datagram: ``samples[i]`` is sample ``first_index + i``."""

    name = "TelemetryWave"
    fields_desc = _fields(WAVE_FIELDS, {
        "channel": ByteEnumField("channel", 1, {i + 1: c for i, c in enumerate(CHANNELS)}),
        "count": FieldLenField("count", None, count_of="samples", fmt="H"),
    }) + [FieldListField("samples", [], SignedShortField("", 0),
                         count_from=lambda p: p.count)]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


class Telemetry(Packet):
    """The telemetry datagram: header, then a numerics or wave body, then an optional tag."""

    name = "Telemetry"
    fields_desc = _fields(HEADER_FIELDS, {
        "magic": XShortField("magic", MAGIC),
        "version": ByteField("version", VERSION),
        "type": ByteEnumField("type", None, {TYPE_NUMERICS: "numerics", TYPE_WAVE: "wave"}),
        "flags": FlagsField("flags", 0, 8, _FLAG_NAMES),
        "body_len": ShortField("body_len", None),
    }) + [
        ConditionalField(PacketLenField("numerics", None, TelemetryNumerics,
                                        length_from=lambda p: p.body_len),
                         lambda p: _body_is(p, TYPE_NUMERICS, "numerics")),
        ConditionalField(PacketLenField("wave", None, TelemetryWave,
                                        length_from=lambda p: p.body_len),
                         lambda p: _body_is(p, TYPE_WAVE, "wave")),
        ConditionalField(XStrFixedLenField("tag", b"\0" * TAG_LEN, TAG_LEN),
                         lambda p: p.key_id != 0),
    ]

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        head = list(struct.unpack_from(HEADER.format, pkt))
        names = [name for name, _ in HEADER_FIELDS]
        if self.type is None:
            wave = self.fields.get("wave") is not None
            head[names.index("type")] = TYPE_WAVE if wave else TYPE_NUMERICS
        if self.body_len is None:
            tag = TAG_LEN if self.key_id else 0
            head[names.index("body_len")] = len(pkt) - HEADER.size - tag
        return HEADER.pack(*head) + pkt[HEADER.size:] + pay

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


class AlarmFrame(Packet):
    """One alarm-channel frame: length (u32, counts the type byte and the body), type, JSON body."""

    name = "AlarmFrame"
    fields_desc = [
        FieldLenField("length", None, length_of="body", fmt="!I",
                      adjust=lambda pkt, x: x + 1),
        ByteEnumField("type", FrameType.HEARTBEAT, {t.value: t.name for t in FrameType}),
        StrLenField("body", b"{}", length_from=lambda p: max((p.length or 1) - 1, 0)),
    ]

    def message(self) -> dict:
        """The frame's JSON as a dict (raises ValueError when it is not JSON)."""
        return json.loads(self.body)

    def guess_payload_class(self, payload: bytes) -> type[Packet]:
        # several frames can share one TCP segment: dissect the rest as further frames
        if len(payload) >= FRAME_HEAD.size:
            return AlarmFrame
        return super().guess_payload_class(payload)


def bind_ports(*, telemetry: int | None = None, alarms: int | None = None) -> None:
    """Let scapy recognise our formats on these ports too (e.g. a lab's ephemeral ports)."""
    if telemetry is not None:
        bind_layers(UDP, Telemetry, dport=telemetry)
    if alarms is not None:
        bind_layers(TCP, AlarmFrame, dport=alarms)
        bind_layers(TCP, AlarmFrame, sport=alarms)


bind_ports(telemetry=DEFAULT_TELEMETRY_PORT, alarms=DEFAULT_ALARM_PORT)
