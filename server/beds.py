"""What the station knows about each bed: latest numerics, bounded histories of numerics and
waveforms, reception statistics, and the NEWS2 of its latest observations."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from vitalsim.flags import Flags
from vitalsim.physiology import news2
from vitalsim.protocol import NumericsMessage, ReceiverStats, WaveMessage

NUMERIC_FIELDS = ("hr", "spo2", "rr", "temp", "nibp_sys", "nibp_dia", "nibp_map", "nibp_time")


def shown(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


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
    history: deque = field(init=False)
    waves: dict[str, deque] = field(init=False)
    pending_waves: list[WaveMessage] = field(init=False)  # not yet pushed to dashboards
    alarm_connected: bool = False
    alarm_link_seen: bool = False  # has it ever connected its alarm channel?

    def __post_init__(self) -> None:
        self.history = deque(maxlen=self.history_len)
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
        out["flags"] = [f.name.lower() for f in Flags if f and f & m.flags]
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
