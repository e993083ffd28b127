"""What the station knows about each bed: latest numerics, bounded histories of numerics and
waveforms, reception statistics, and the NEWS2 of its latest observations."""

from __future__ import annotations

import json
import math
from array import array
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from vitalsim.flags import Flags
from vitalsim.physiology import news2
from vitalsim.protocol import NumericsMessage, ReceiverStats, WaveMessage
from vitalsim.rhythms import RHYTHM_CODE, RHYTHM_OF_CODE

NUMERIC_FIELDS = ("hr", "spo2", "rr", "temp", "nibp_sys", "nibp_dia", "nibp_map", "nibp_time")
#: telemetry version 3's numerics, as the summary names them (``rhythm`` as its name)
V3_FIELDS = ("rhythm", "pvc_per_min", "etco2", "awrr", "abp_sys", "abp_dia", "abp_map")
#: the keys version 3 added to a bed's summary (the airway rate stays in the history only)
SUMMARY_V3_KEYS = ("rhythm", "pvc_per_min", "etco2", "abp_sys", "abp_dia", "abp_map")
# (bit, name) of every flag, once: iterating the enum for every summary costs microseconds
_FLAG_NAMES = tuple((int(f), f.name.lower()) for f in Flags if f)


def shown(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _json_flags(flags: int) -> str:
    return "[" + ",".join(f'"{name}"' for bit, name in _FLAG_NAMES if bit & flags) + "]"


#: the flags byte's JSON list for each of its 256 values, built once
_FLAGS_JSON = tuple(_json_flags(value) for value in range(256))
#: each rhythm name as a JSON string (every name is plain ASCII, see vitalsim.rhythms)
_RHYTHM_JSON = {name: json.dumps(name) for name in RHYTHM_CODE}


def _num(value: float | None) -> str:
    """A rounded reading as JSON: what ``json.dumps(round(value, 2))`` writes (float.__repr__);
    ValueError for a value that is not finite, as the strict encoder refuses it."""
    if value is None:
        return "null"
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not JSON")
    return repr(round(value, 2))


class NumericsHistory:
    """A bed's last ``maxlen`` numerics, in a flat ring of doubles, 22 per reading.

    Ten minutes of message objects cost about 400 bytes a reading (the object and a float object
    per value); as doubles, 176 (with telemetry version 3's fields). Reading it back (the
    history API, a lab) rebuilds the messages, exactly: every field is a float64 or an integer
    below 2**53 (the u64 boot id as two halves), and None is stored as NaN, as on the wire
    (the rhythm as its wire code). Iterates oldest first, like the deque it replaces."""

    FIELDS = ("device_id", "bed", "seq", "sent_at", "flags", *NUMERIC_FIELDS, "boot_id_high",
              "boot_id_low", *V3_FIELDS)

    #: readings the ring has room for at first; it doubles as it fills, up to ``maxlen``
    FIRST_ROOM = 16

    def __init__(self, maxlen: int) -> None:
        self.maxlen = maxlen
        self._width = len(self.FIELDS)
        # grown as it fills rather than allocated whole: a station that starts with thousands
        # of beds streaming makes each bed's history at its first datagram, and 10 minutes of
        # doubles for each (105 KB, every page touched) held its loop for 30-40 ms per 256 beds
        self._room = min(self.FIRST_ROOM, maxlen)
        self._ring = array("d", [0.0]) * (self._width * self._room)
        self._count = 0
        self._next = 0

    def append(self, msg: NumericsMessage) -> None:
        if self._count == self._room < self.maxlen:
            # full but not yet at maxlen: it has never wrapped, so the readings lie oldest
            # first from slot 0 and the next goes just after them, in the added room
            grown = min(2 * self._room, self.maxlen)
            self._ring.extend(array("d", [0.0]) * (self._width * (grown - self._room)))
            self._room = grown
            self._next = self._count
        w, i = self._width, self._next * self._width
        nan = math.nan
        self._ring[i:i + w] = array("d", [nan if v is None else v for v in (
            msg.device_id, msg.bed, msg.seq, msg.sent_at, msg.flags, msg.hr, msg.spo2, msg.rr,
            msg.temp, msg.nibp_sys, msg.nibp_dia, msg.nibp_map, msg.nibp_time,
            msg.boot_id >> 32, msg.boot_id & 0xFFFFFFFF,  # a u64 does not fit a double's 53 bits
            None if msg.rhythm is None else RHYTHM_CODE[msg.rhythm], msg.pvc_per_min,
            msg.etco2, msg.awrr, msg.abp_sys, msg.abp_dia, msg.abp_map)])
        self._next = (self._next + 1) % self._room
        self._count = min(self._count + 1, self._room)

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> NumericsMessage:
        if not -self._count <= index < self._count:
            raise IndexError("history index out of range")
        oldest = (self._next - self._count) % self._room
        row = (oldest + index % self._count) % self._room
        w = self._width
        v = self._ring[row * w:row * w + w]
        rhythm, pvc = v[15], v[16]
        return NumericsMessage(int(v[0]), int(v[1]), int(v[2]), v[3], int(v[4]),
                               *(None if x != x else x for x in v[5:13]),
                               (int(v[13]) << 32) | int(v[14]),
                               None if rhythm != rhythm else RHYTHM_OF_CODE[int(rhythm)],
                               None if pvc != pvc else int(pvc),
                               *(None if x != x else x for x in v[17:]))

    def __iter__(self) -> Iterator[NumericsMessage]:
        for i in range(self._count):
            yield self[i]


@dataclass
class BedState:
    bed: int
    device_id: int
    history_len: int
    wave_chunks: int = 120  # per channel: 30 s of quarter-second chunks
    latest: NumericsMessage | None = None
    received_at: float = 0.0
    stale: bool = False
    stats: ReceiverStats = field(default_factory=ReceiverStats)
    history: NumericsHistory = field(init=False)
    # channel -> the retained chunks, oldest first, each a plain tuple (first_index, sent_at,
    # samples): see add_wave
    waves: dict[str, deque[tuple[int, float, np.ndarray]]] = field(init=False)
    alarm_connected: bool = False
    alarm_link_seen: bool = False  # has it ever connected its alarm channel?

    #: the members of summary() before the readings, and the readings (readings_json)
    HEAD_KEYS = ("bed", "device_id", "alarm_connected", "stale")
    READING_KEYS = (*NUMERIC_FIELDS, *SUMMARY_V3_KEYS, "flags", "sent_at", "received_at")

    def __post_init__(self) -> None:
        self.history = NumericsHistory(self.history_len)
        self.waves = {}

    def update(self, msg: NumericsMessage, received_at: float, *, newest: bool = True) -> None:
        """Keep one admitted numerics datagram. ``newest``: its sequence number is the highest
        yet (the receiver statistics say so), so it is what the bed shows; a late one only
        joins the history. The send time never decides: it is just another field a sender
        chooses. Any admitted datagram proves the device is sending."""
        if self.latest is None or newest:
            self.latest = msg
        self.received_at = received_at
        self.history.append(msg)

    def add_wave(self, msg: WaveMessage) -> None:
        """Retain a chunk as a plain tuple of an int, a float and the samples array. The garbage
        collector stops tracking such a tuple after its first collection (none of its parts can
        form a cycle), where a message object stays tracked: 2,000 beds' 30 s of chunks are
        720,000 of them, and a full collection walking them held the station's loop for most of
        a second. Nothing is lost: the history needs no more than this."""
        ring = self.waves.get(msg.channel)
        if ring is None:
            ring = self.waves[msg.channel] = deque(maxlen=self.wave_chunks)
        ring.append((msg.first_index, msg.sent_at, msg.samples))

    def news2(self) -> dict | None:
        """NEWS2 of the bed's latest observation set: scored once per cuff reading (a ward
        scores a set of observations, not every second; rescored from 1 Hz numerics the band
        flickered), assuming air and an alert patient. Cached on the bed, so a summary per
        second costs a comparison. The station's ``ObservationChart`` (server/observations.py)
        scores the same sets with what staff entered, and its score is what dashboards see."""
        m = self.latest
        if m is None:
            return None
        cached = self.__dict__.get("_news2_set")
        if cached is not None and cached[0] == m.nibp_time:
            return cached[1]
        score = news2(rr=m.rr, spo2=m.spo2, temp=m.temp, systolic=m.nibp_sys, hr=m.hr)
        out = {"total": score.total, "band": score.band, "complete": score.complete,
               "missing": list(score.missing)}
        self.__dict__["_news2_set"] = (m.nibp_time, out)
        return out

    def readings_json(self) -> str:
        """The members of :meth:`summary` that a new datagram changes (every reading, the
        flags, the send and receive times), as JSON text without braces, for a bed that has
        numerics. The station joins this with the rest of the summary, encoded once per change
        of the rest (server.station): at thousands of beds a second, ``json.dumps`` of the
        whole summary was the station's largest single cost. ``tests/test_beds.py`` holds it
        equal to ``summary()``'s own members."""
        m = self.latest
        assert m is not None
        num = _num
        rhythm, pvc, flags = m.rhythm, m.pvc_per_min, m.flags
        if not math.isfinite(m.sent_at) or not math.isfinite(self.received_at):
            raise ValueError("a send or receive time is not finite: not JSON")
        return (f'"hr":{num(m.hr)},"spo2":{num(m.spo2)},"rr":{num(m.rr)},"temp":{num(m.temp)},'
                f'"nibp_sys":{num(m.nibp_sys)},"nibp_dia":{num(m.nibp_dia)},'
                f'"nibp_map":{num(m.nibp_map)},"nibp_time":{num(m.nibp_time)},'
                f'"rhythm":{"null" if rhythm is None else _RHYTHM_JSON[rhythm]},'
                f'"pvc_per_min":{"null" if pvc is None else int(pvc)},'
                f'"etco2":{num(m.etco2)},"abp_sys":{num(m.abp_sys)},'
                f'"abp_dia":{num(m.abp_dia)},"abp_map":{num(m.abp_map)},'
                f'"flags":{_FLAGS_JSON[flags] if 0 <= flags < 256 else _json_flags(flags)},'
                f'"sent_at":{m.sent_at!r},"received_at":{self.received_at!r}')

    def summary(self) -> dict:
        """The JSON view of this bed that the API and the WebSocket hub share."""
        out: dict = {"bed": self.bed, "device_id": self.device_id,
                     "alarm_connected": self.alarm_connected, "stale": self.stale}
        m = self.latest
        if m is None:
            out.update({k: None for k in NUMERIC_FIELDS}, flags=[], sent_at=None, news2=None)
            out.update({k: None for k in SUMMARY_V3_KEYS})
            return out
        # float32 on the wire: 36.9 arrives as 36.900001525878906; show what was meant. Spelt
        # out field by field (the station builds one per change of every bed: a comprehension
        # over NUMERIC_FIELDS with getattr cost a third of it)
        hr, spo2, rr, temp = m.hr, m.spo2, m.rr, m.temp
        sys_, dia, mean, cuff = m.nibp_sys, m.nibp_dia, m.nibp_map, m.nibp_time
        out["hr"] = None if hr is None else round(hr, 2)
        out["spo2"] = None if spo2 is None else round(spo2, 2)
        out["rr"] = None if rr is None else round(rr, 2)
        out["temp"] = None if temp is None else round(temp, 2)
        out["nibp_sys"] = None if sys_ is None else round(sys_, 2)
        out["nibp_dia"] = None if dia is None else round(dia, 2)
        out["nibp_map"] = None if mean is None else round(mean, 2)
        out["nibp_time"] = None if cuff is None else round(cuff, 2)
        out["rhythm"] = m.rhythm
        out["pvc_per_min"] = m.pvc_per_min
        etco2, a_sys, a_dia, a_map = m.etco2, m.abp_sys, m.abp_dia, m.abp_map
        out["etco2"] = None if etco2 is None else round(etco2, 2)
        out["abp_sys"] = None if a_sys is None else round(a_sys, 2)
        out["abp_dia"] = None if a_dia is None else round(a_dia, 2)
        out["abp_map"] = None if a_map is None else round(a_map, 2)
        flags = m.flags
        out["flags"] = [name for bit, name in _FLAG_NAMES if bit & flags] if flags else []
        out["sent_at"] = m.sent_at
        out["received_at"] = self.received_at
        out["news2"] = self.news2()
        return out


def wave_json(msg: WaveMessage) -> dict:
    return {"channel": msg.channel, "rate": msg.rate, "first_index": msg.first_index,
            "sent_at": msg.sent_at, "samples": msg.samples.tolist()}


class BedRegistry:
    """Beds by number, for provisioned devices only, created on their first telemetry.

    A device is provisioned for one bed (:meth:`provision`): the ward the station starts with,
    or an explicit registry. Anything else that decodes is refused as ``unknown_device``, so
    a forger or a fuzzer cannot create beds, and the number of beds (and so the memory they
    take, about 80 KB each) is bounded by ``max_beds``."""

    def __init__(self, history_len: int, wave_chunks: int = 120, *,
                 max_beds: int = 1024, anti_replay: bool = True) -> None:
        self.anti_replay = anti_replay  # False: replays admitted (lab 06 shows why not)
        self.history_len = history_len
        self.wave_chunks = wave_chunks
        self.max_beds = max_beds
        self.beds: dict[int, BedState] = {}
        self.devices: dict[int, int] = {}  # provisioned device id -> its bed
        self._device_of: dict[int, int] = {}  # bed -> its provisioned device id

    def provision(self, device_id: int, bed: int) -> None:
        """Let ``device_id`` speak for ``bed`` (one device per bed; a bed's device may be
        replaced). Raises ValueError past ``max_beds`` or outside the wire's ranges."""
        if not 0 <= device_id < 2**32 or not 0 <= bed < 2**16:
            raise ValueError(f"device {device_id} / bed {bed} outside u32 / u16")
        if bed not in self._device_of and len(self._device_of) >= self.max_beds:
            raise ValueError(f"a station serves at most {self.max_beds} beds; "
                             f"bed {bed} would be one more")
        old_device = self._device_of.get(bed)
        if old_device is not None:
            del self.devices[old_device]
        old_bed = self.devices.get(device_id)
        if old_bed is not None:
            del self._device_of[old_bed]
        self.devices[device_id] = bed
        self._device_of[bed] = device_id

    def device_of(self, bed: int) -> int | None:
        """The device provisioned for ``bed``, if any."""
        return self._device_of.get(bed)

    def owns(self, device_id: int, bed: int) -> bool:
        return self.devices.get(device_id) == bed

    def get(self, bed: int, device_id: int) -> BedState | None:
        """The bed's state, created on first use; None unless ``device_id`` is provisioned
        for ``bed``."""
        state = self.beds.get(bed)
        if state is None:
            if self.devices.get(device_id) != bed:
                return None
            state = self.beds[bed] = BedState(
                bed, device_id, self.history_len, self.wave_chunks,
                stats=ReceiverStats(anti_replay=self.anti_replay))
        elif state.device_id != device_id:
            if self.devices.get(device_id) != bed:
                return None
            # the bed's monitor was replaced: a new device, a new sequence space
            state.device_id, state.stats = device_id, ReceiverStats(anti_replay=self.anti_replay)
        return state

    def summaries(self) -> list[dict]:
        return [self.beds[b].summary() for b in sorted(self.beds)]
