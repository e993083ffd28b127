"""What the station knows about each bed: latest numerics, a bounded history, reception stats."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from vitalsim.flags import Flags
from vitalsim.protocol import NumericsMessage, ReceiverStats

NUMERIC_FIELDS = ("hr", "spo2", "rr", "temp", "nibp_sys", "nibp_dia", "nibp_map", "nibp_time")


def _shown(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


@dataclass
class BedState:
    bed: int
    device_id: int
    history_len: int
    latest: NumericsMessage | None = None
    received_at: float = 0.0
    stats: ReceiverStats = field(default_factory=ReceiverStats)
    history: deque = field(init=False)
    alarm_connected: bool = False

    def __post_init__(self) -> None:
        self.history = deque(maxlen=self.history_len)

    def update(self, msg: NumericsMessage, received_at: float) -> None:
        if self.latest is None or msg.sent_at >= self.latest.sent_at:
            self.latest = msg
            self.received_at = received_at
        self.history.append(msg)

    def summary(self) -> dict:
        """The JSON view of this bed that the API and the WebSocket hub share."""
        out: dict = {"bed": self.bed, "device_id": self.device_id,
                     "alarm_connected": self.alarm_connected}
        m = self.latest
        if m is None:
            out.update({k: None for k in NUMERIC_FIELDS}, flags=[], sent_at=None)
            return out
        # float32 on the wire: 36.9 arrives as 36.900001525878906; show what was meant
        out.update({k: _shown(getattr(m, k)) for k in NUMERIC_FIELDS})
        out["flags"] = [f.name.lower() for f in Flags if f and f & m.flags]
        out["sent_at"] = m.sent_at
        out["received_at"] = self.received_at
        return out


class BedRegistry:
    """Beds by number, created on first telemetry."""

    def __init__(self, history_len: int) -> None:
        self.history_len = history_len
        self.beds: dict[int, BedState] = {}

    def get(self, bed: int, device_id: int) -> BedState:
        state = self.beds.get(bed)
        if state is None:
            state = self.beds[bed] = BedState(bed, device_id, self.history_len)
        return state

    def summaries(self) -> list[dict]:
        return [self.beds[b].summary() for b in sorted(self.beds)]
