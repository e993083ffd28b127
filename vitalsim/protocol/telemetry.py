"""The telemetry datagram: what a bedside monitor sends the station by UDP, best effort.

One datagram carries one bed's numerics, or one chunk of one waveform channel. Every datagram has a
per-device sequence number and the device's send time, so that the receiver can *see* loss,
duplication, reordering and latency, which plain UDP hides. Version 2 adds the device's boot id
(the same epoch as in its alarm ids), so that a receiver tells a restarted device, whose
sequence numbers start again, from a replay of datagrams sent before the restart. Version 3 adds
what a clinician reads beside the basic numbers: the rhythm the monitor labels (a code from
:mod:`vitalsim.rhythms`), the PVC count per minute, end-tidal CO2 and the airway respiration
rate from the capnograph, the invasive arterial pressures, and the capnogram and arterial
pressure waves.

Layout (network byte order), version 3; see docs/PROTOCOL.md for the table and the reasons::

    header (34 bytes)
      magic u16 = 0x5653 ("VS") | version u8 | type u8 | flags u8 | key_id u8
      bed u16 | device_id u32 | seq u32 | sent_at_us u64 | boot_id u64 | body_len u16
    body   (body_len bytes)
      numerics: 7 x f32 (hr, spo2, rr, temp, nibp_sys, nibp_dia, nibp_map; NaN = not available)
                + f64 nibp_time (NaN = no reading yet)
                + 5 x f32 (etco2, awrr, abp_sys, abp_dia, abp_map; NaN = not available)
                + rhythm u8 (0 = not analysed) | pvc_per_min u8 (255 = not counted)
      wave:     channel u8 | reserved u8 | rate u16 | first_index u32 | count u16 | count x i16
    tag    (16 bytes, only when key_id != 0): HMAC-SHA256(key, header + body), truncated
"""

from __future__ import annotations

import hashlib
import hmac
import math
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ..keys import KeyRefused
from ..rhythms import RHYTHM_CODE, RHYTHM_NAMES, RHYTHM_OF_CODE

MAGIC = 0x5653
#: version 2 added ``boot_id``, version 3 the rhythm, ETCO2, ABP and their waves; a receiver
#: refuses every other version (``bad_version``)
VERSION = 3
MAX_DATAGRAM = 1200
TAG_LEN = 16

TYPE_NUMERICS = 1
TYPE_WAVE = 2

# The layout, once: (field name, struct code). The codec's structs and the scapy layers in
# vitalsim.layers are both built from these tables, so the two cannot drift apart.
HEADER_FIELDS = (
    ("magic", "H"), ("version", "B"), ("type", "B"), ("flags", "B"), ("key_id", "B"),
    ("bed", "H"), ("device_id", "I"), ("seq", "I"), ("sent_at_us", "Q"), ("boot_id", "Q"),
    ("body_len", "H"),
)
#: the magic and the version come first in every version, so any version can be named
_PREAMBLE = struct.Struct("!HB")
NUMERICS_FIELDS = (
    ("hr", "f"), ("spo2", "f"), ("rr", "f"), ("temp", "f"), ("nibp_sys", "f"),
    ("nibp_dia", "f"), ("nibp_map", "f"), ("nibp_time", "d"),
    ("etco2", "f"), ("awrr", "f"), ("abp_sys", "f"), ("abp_dia", "f"), ("abp_map", "f"),
    ("rhythm", "B"), ("pvc_per_min", "B"),
)
#: the byte in ``pvc_per_min`` that means "not counted" (no ECG to count on)
PVC_NOT_COUNTED = 255
WAVE_FIELDS = (
    ("channel", "B"), ("reserved", "B"), ("rate", "H"), ("first_index", "I"), ("count", "H"),
)


def _struct(fields: tuple[tuple[str, str], ...]) -> struct.Struct:
    return struct.Struct("!" + "".join(code for _, code in fields))


HEADER = _struct(HEADER_FIELDS)
NUMERICS_BODY = _struct(NUMERICS_FIELDS)
WAVE_HEAD = _struct(WAVE_FIELDS)

#: wave channels in code order (code = index + 1): "co2" (capnogram, mmHg) and "abp" (arterial
#: pressure, mmHg x 10) are version 3's
CHANNELS = ("ecg", "pleth", "resp", "co2", "abp")
_CHANNEL_CODE = {name: i + 1 for i, name in enumerate(CHANNELS)}
_CHANNEL_NAME = {code: name for name, code in _CHANNEL_CODE.items()}

#: the most int16 samples one wave datagram can hold while staying within MAX_DATAGRAM
MAX_WAVE_SAMPLES = (MAX_DATAGRAM - HEADER.size - WAVE_HEAD.size - TAG_LEN) // 2


class TelemetryError(ValueError):
    """A datagram that cannot be decoded (or a message that cannot be encoded).

    ``reason`` is a short stable word for counting rejects ("short", "bad_magic", "bad_version",
    "bad_type", "length", "bad_tag", "unknown_key", "bad_channel", "too_big", "bad_value",
    "bad_rhythm");
    the message says what exactly was wrong.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


# slots: a station keeps hundreds of these per bed (its waveform history); without a __dict__
# each is a third the size
@dataclass(frozen=True, slots=True)
class NumericsMessage:
    """One bed's numerics at one moment. ``None`` means "not available" (e.g. probe off)."""

    device_id: int
    bed: int
    seq: int
    sent_at: float
    flags: int
    hr: float | None
    spo2: float | None
    rr: float | None
    temp: float | None
    nibp_sys: float | None = None
    nibp_dia: float | None = None
    nibp_map: float | None = None
    nibp_time: float | None = None
    #: this run of the device (its start time in microseconds, as in its alarm ids); 0 for a
    #: device that was given none. Defaulted, so older call sites still build messages
    boot_id: int = 0
    # version 3: all defaulted to "not available", after boot_id, for the same reason
    #: the rhythm the monitor labels (a name in vitalsim.rhythms.RHYTHM_NAMES)
    rhythm: str | None = None
    pvc_per_min: int | None = None
    etco2: float | None = None  # end-tidal CO2, mmHg
    awrr: float | None = None  # airway respiration rate from the capnogram, per minute
    abp_sys: float | None = None  # invasive arterial pressure, mmHg (None: no arterial line)
    abp_dia: float | None = None
    abp_map: float | None = None


@dataclass(frozen=True, slots=True)
class WaveMessage:
    """A chunk of one waveform channel: ``samples[i]`` is sample number ``first_index + i``."""

    device_id: int
    bed: int
    seq: int
    sent_at: float
    flags: int
    channel: str
    rate: int
    first_index: int
    samples: np.ndarray = field(compare=False)
    boot_id: int = 0  # as in NumericsMessage

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WaveMessage):
            return NotImplemented
        return (
            (self.device_id, self.bed, self.seq, self.sent_at, self.flags, self.channel,
             self.boot_id)
            == (other.device_id, other.bed, other.seq, other.sent_at, other.flags, other.channel,
                other.boot_id)
            and (self.rate, self.first_index) == (other.rate, other.first_index)
            and np.array_equal(self.samples, other.samples)
        )

    __hash__ = None  # type: ignore[assignment]


Message = NumericsMessage | WaveMessage


def _opt(value: float | None) -> float:
    return math.nan if value is None else float(value)




def _bad_version(version: int) -> TelemetryError:
    return TelemetryError("bad_version", f"a version {version} datagram; this receiver speaks "
                          f"only version {VERSION} (docs/PROTOCOL.md, section 1)")


def _tag(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()[:TAG_LEN]


def encode(msg: Message, *, key: bytes | None = None, key_id: int = 1) -> bytes:
    """Encode a message as one datagram; with ``key``, append an HMAC tag under ``key_id``."""
    if isinstance(msg, NumericsMessage):
        mtype = TYPE_NUMERICS
        rhythm = 0 if msg.rhythm is None else RHYTHM_CODE.get(msg.rhythm)
        if rhythm is None:
            raise TelemetryError("bad_rhythm",
                                 f"unknown rhythm {msg.rhythm!r}; known: {RHYTHM_NAMES}")
        pvc = msg.pvc_per_min
        if pvc is None:
            pvc = PVC_NOT_COUNTED
        elif not 0 <= pvc < PVC_NOT_COUNTED:
            raise TelemetryError("bad_value", f"pvc_per_min={pvc}; expected 0..254 or None")
        body = NUMERICS_BODY.pack(
            _opt(msg.hr), _opt(msg.spo2), _opt(msg.rr), _opt(msg.temp),
            _opt(msg.nibp_sys), _opt(msg.nibp_dia), _opt(msg.nibp_map), _opt(msg.nibp_time),
            _opt(msg.etco2), _opt(msg.awrr), _opt(msg.abp_sys), _opt(msg.abp_dia),
            _opt(msg.abp_map), rhythm, pvc,
        )
    elif isinstance(msg, WaveMessage):
        mtype = TYPE_WAVE
        code = _CHANNEL_CODE.get(msg.channel)
        if code is None:
            raise TelemetryError("bad_channel",
                                 f"unknown channel {msg.channel!r}; known: {CHANNELS}")
        samples = np.asarray(msg.samples)
        if samples.ndim != 1 or len(samples) > MAX_WAVE_SAMPLES:
            raise TelemetryError(
                "too_big", f"a wave chunk holds 1-D and at most {MAX_WAVE_SAMPLES} samples"
            )
        body = WAVE_HEAD.pack(code, 0, msg.rate, msg.first_index, len(samples))
        body += samples.astype(">i2", casting="unsafe").tobytes()
    else:
        raise TypeError(f"cannot encode {type(msg).__name__}")
    kid = 0
    if key is not None:
        if not 1 <= key_id <= 255:
            raise TelemetryError("bad_value", f"key_id must be 1..255, got {key_id}")
        kid = key_id
    try:
        header = HEADER.pack(
            MAGIC, VERSION, mtype, msg.flags, kid, msg.bed, msg.device_id, msg.seq,
            round(msg.sent_at * 1_000_000), msg.boot_id, len(body),
        )
    except struct.error as exc:
        raise TelemetryError("bad_value", f"a header field is out of range: {exc}") from None
    data = header + body
    if key is not None:
        data += _tag(key, data)
    return data


def decode(data: bytes, *, keys: Mapping[int, bytes] | None = None,
           require_tag: bool = False,
           key_for: Callable[[int, int], bytes] | None = None) -> Message:
    """Decode one datagram. Raises :class:`TelemetryError` and nothing else on bad input.

    ``keys`` maps key ids to HMAC keys; a tagged datagram whose tag does not verify is rejected.
    ``key_for(device_id, key_id)``, instead, gives each device its own keys (a
    :meth:`vitalsim.keys.KeyFile.lookup` at the receiver's time): it returns the key or raises
    :class:`~vitalsim.keys.KeyRefused`, whose reason (``unknown_key``, ``retired_key``) the
    datagram is refused with. With ``require_tag`` an untagged datagram is rejected too.
    """
    data = bytes(data)
    size = len(data)
    if size < HEADER.size:
        # the version before the length: one of ours in another version (a version-1 datagram
        # has a 26-byte header) is told what it is, not that it is short
        if size >= _PREAMBLE.size:
            magic, version = _PREAMBLE.unpack_from(data)
            if magic == MAGIC and version != VERSION:
                raise _bad_version(version)
        raise TelemetryError("short", f"{size} bytes, a header needs {HEADER.size}")
    (magic, version, mtype, flags, kid, bed, device_id, seq, sent_us, boot_id,
     body_len) = HEADER.unpack_from(data)
    if magic == MAGIC and version != VERSION:
        raise _bad_version(version)
    if magic != MAGIC:
        raise TelemetryError("bad_magic", f"magic 0x{magic:04x}, expected 0x{MAGIC:04x}")
    tag_len = TAG_LEN if kid else 0
    expected = HEADER.size + body_len + tag_len
    if size != expected:
        raise TelemetryError(
            "length", f"{size} bytes, header says {expected} (body {body_len}, tag {tag_len})"
        )
    if kid:
        if key_for is not None:
            try:
                key = key_for(device_id, kid)
            except KeyRefused as exc:
                raise TelemetryError(exc.reason, str(exc)) from None
        else:
            key = (keys or {}).get(kid)
        if key is None:
            raise TelemetryError("unknown_key", f"datagram is signed with unknown key id {kid}")
        if not hmac.compare_digest(_tag(key, data[:-TAG_LEN]), data[-TAG_LEN:]):
            raise TelemetryError("bad_tag", f"HMAC tag does not verify under key id {kid}")
    elif require_tag:
        raise TelemetryError("bad_tag", "datagram is not signed and this receiver requires a tag")
    # the body is read in place (unpack_from, frombuffer at an offset), never copied out
    sent_at = sent_us / 1_000_000
    if mtype == TYPE_NUMERICS:
        if body_len != NUMERICS_BODY.size:
            raise TelemetryError(
                "length", f"numerics body is {body_len} bytes, expected {NUMERICS_BODY.size}"
            )
        (hr, spo2, rr, temp, sys_, dia, map_, nibp_t, etco2, awrr, a_sys, a_dia, a_map,
         rhythm_code, pvc) = NUMERICS_BODY.unpack_from(data, HEADER.size)
        if rhythm_code:
            rhythm = RHYTHM_OF_CODE.get(rhythm_code)
            if rhythm is None:
                raise TelemetryError("bad_rhythm", f"rhythm code {rhythm_code} is not one of "
                                     f"0..{len(RHYTHM_NAMES)} (docs/PROTOCOL.md)")
        else:
            rhythm = None
        # NaN is "not available": x == x is False only for NaN (spelt out: a function call
        # per value was a sixth of decoding a datagram)
        return NumericsMessage(
            device_id, bed, seq, sent_at, flags, hr if hr == hr else None,
            spo2 if spo2 == spo2 else None, rr if rr == rr else None,
            temp if temp == temp else None, sys_ if sys_ == sys_ else None,
            dia if dia == dia else None, map_ if map_ == map_ else None,
            nibp_t if nibp_t == nibp_t else None, boot_id,
            rhythm, None if pvc == PVC_NOT_COUNTED else pvc,
            etco2 if etco2 == etco2 else None, awrr if awrr == awrr else None,
            a_sys if a_sys == a_sys else None, a_dia if a_dia == a_dia else None,
            a_map if a_map == a_map else None,
        )
    if mtype == TYPE_WAVE:
        if body_len < WAVE_HEAD.size:
            raise TelemetryError("length", f"wave body is {body_len} bytes, less than its head")
        code, _reserved, rate, first_index, count = WAVE_HEAD.unpack_from(data, HEADER.size)
        channel = _CHANNEL_NAME.get(code)
        if channel is None:
            raise TelemetryError("bad_channel",
                                 f"channel code {code} is not one of 1..{len(CHANNELS)}")
        if body_len != WAVE_HEAD.size + 2 * count:
            raise TelemetryError(
                "length", f"wave body is {body_len} bytes, {count} samples need "
                f"{WAVE_HEAD.size + 2 * count}"
            )
        samples = np.frombuffer(data, dtype=">i2", count=count,
                                offset=HEADER.size + WAVE_HEAD.size).astype(np.int16)
        return WaveMessage(device_id, bed, seq, sent_at, flags, channel, rate, first_index, samples,
                           boot_id)
    raise TelemetryError("bad_type", f"message type {mtype}, expected 1 (numerics) or 2 (wave)")
