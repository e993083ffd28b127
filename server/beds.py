"""What the station knows about each bed: latest numerics, bounded histories of numerics and
waveforms, reception statistics, and the NEWS2 of its latest observations."""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from vitalsim.flags import Flags
from vitalsim.physiology import news2
from vitalsim.protocol import NumericsMessage, ReceiverStats, WaveMessage

NUMERIC_FIELDS = ("hr", "spo2", "rr", "temp", "nibp_sys", "nibp_dia", "nibp_map", "nibp_time")
# (bit, name) of every flag, once: iterating the enum for every summary costs microseconds
_FLAG_NAMES = tuple((int(f), f.name.lower()) for f in Flags if f)


def shown(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


class NumericsHistory:
    """A bed's last ``maxlen`` numerics, in a flat ring of doubles, 11 per reading.

    Ten minutes of message objects cost about 400 bytes a reading (the object and a float object
    per value); as doubles, 88. Reading it back (the history API, a lab) rebuilds the messages,
    exactly: every field is a float64 or an integer below 2**53, and None is stored as NaN, as
    on the wire. Iterates oldest first, like the deque it replaces."""

    FIELDS = ("device_id", "bed", "seq", "sent_at", "flags", *NUMERIC_FIELDS)

    def __init__(self, maxlen: int) -> None:
        self.maxlen = maxlen
        self._width = len(self.FIELDS)
        self._ring = array("d", [0.0]) * (self._width * maxlen)
        self._count = 0
        self._next = 0

    def append(self, msg: NumericsMessage) -> None:
        w, i = self._width, self._next * self._width
        nan = math.nan
        self._ring[i:i + w] = array("d", [nan if v is None else v for v in (
            msg.device_id, msg.bed, msg.seq, msg.sent_at, msg.flags, msg.hr, msg.spo2, msg.rr,
            msg.temp, msg.nibp_sys, msg.nibp_dia, msg.nibp_map, msg.nibp_time)])
        self._next = (self._next + 1) % self.maxlen
        self._count = min(self._count + 1, self.maxlen)

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> NumericsMessage:
        if not -self._count <= index < self._count:
            raise IndexError("history index out of range")
        oldest = (self._next - self._count) % self.maxlen
        row = (oldest + index % self._count) % self.maxlen
        w = self._width
        v = self._ring[row * w:row * w + w]
        return NumericsMessage(int(v[0]), int(v[1]), int(v[2]), v[3], int(v[4]),
                               *(None if x != x else x for x in v[5:]))

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
    waves: dict[str, deque] = field(init=False)
    pending_waves: list[WaveMessage] = field(init=False)  # not yet pushed to dashboards
    alarm_connected: bool = False
    alarm_link_seen: bool = False  # has it ever connected its alarm channel?

    def __post_init__(self) -> None:
        self.history = NumericsHistory(self.history_len)
        self.waves = {}
        self.pending_waves = []

    def update(self, msg: NumericsMessage, received_at: float) -> None:
        if self.latest is None or msg.sent_at >= self.latest.sent_at:
            self.latest = msg
            self.received_at = received_at
        self.history.append(msg)

    def add_wave(self, msg: WaveMessage) -> None:
        ring = self.waves.get(msg.channel)
        if ring is None:
            ring = self.waves[msg.channel] = deque(maxlen=self.wave_chunks)
        ring.append(msg)
        if len(self.pending_waves) < 4 * self.wave_chunks:  # bounded if nobody drains it
            self.pending_waves.append(msg)

    def take_pending_waves(self) -> list[WaveMessage]:
        out, self.pending_waves = self.pending_waves, []
        return out

    def news2(self) -> dict | None:
        m = self.latest
        if m is None:
            return None
        score = news2(rr=m.rr, spo2=m.spo2, temp=m.temp, systolic=m.nibp_sys, hr=m.hr)
        return {"total": score.total, "band": score.band, "complete": score.complete,
                "missing": list(score.missing)}

    def summary(self) -> dict:
        """The JSON view of this bed that the API and the WebSocket hub share."""
        out: dict = {"bed": self.bed, "device_id": self.device_id,
                     "alarm_connected": self.alarm_connected, "stale": self.stale}
        m = self.latest
        if m is None:
            out.update({k: None for k in NUMERIC_FIELDS}, flags=[], sent_at=None, news2=None)
            return out
        # float32 on the wire: 36.9 arrives as 36.900001525878906; show what was meant
        out.update({k: shown(getattr(m, k)) for k in NUMERIC_FIELDS})
        out["flags"] = [name for bit, name in _FLAG_NAMES if bit & m.flags]
        out["sent_at"] = m.sent_at
        out["received_at"] = self.received_at
        out["news2"] = self.news2()
        return out


def wave_json(msg: WaveMessage) -> dict:
    return {"channel": msg.channel, "rate": msg.rate, "first_index": msg.first_index,
            "sent_at": msg.sent_at, "samples": msg.samples.tolist()}


class BedRegistry:
    """Beds by number, created on first telemetry."""

    def __init__(self, history_len: int, wave_chunks: int = 120) -> None:
        self.history_len = history_len
        self.wave_chunks = wave_chunks
        self.beds: dict[int, BedState] = {}

    def get(self, bed: int, device_id: int) -> BedState:
        state = self.beds.get(bed)
        if state is None:
            state = self.beds[bed] = BedState(bed, device_id, self.history_len,
                                              self.wave_chunks)
        return state

    def summaries(self) -> list[dict]:
        return [self.beds[b].summary() for b in sorted(self.beds)]
