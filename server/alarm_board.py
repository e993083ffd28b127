"""The station's view of alarms: one entry per (bed, condition), with its lifecycle.

Device events (raised, updated, cleared) and nurse actions (acknowledge, silence) both change an
entry. The board can be rebuilt from the journal, so a restarted station shows what it showed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from vitalsim.protocol import AlarmMessage

PRIORITY_RANK = {"high": 3, "medium": 2, "low": 1}


@dataclass
class AlarmEntry:
    alarm_id: str  # the id of the event that raised it
    bed: int
    condition: str
    priority: str
    state: str  # active | acknowledged | cleared
    value: float | None
    limit: float | None
    raised_at: float
    updated_at: float
    condition_present: bool = True
    acked_by: str | None = None
    acked_at: float | None = None
    silenced_by: str | None = None
    silenced_until: float | None = None
    source: str = "device"  # "device" or "station" (technical alarms)

    def to_json(self) -> dict:
        return asdict(self)


class AlarmBoard:
    def __init__(self) -> None:
        self._by_key: dict[tuple[int, str], AlarmEntry] = {}
        self._by_id: dict[str, AlarmEntry] = {}
        self._silenced: dict[str, AlarmEntry] = {}  # the alarms a silence may expire on

    def apply_event(self, ev: AlarmMessage, *, source: str = "device") -> AlarmEntry:
        key = (ev.bed, ev.condition)
        entry = self._by_key.get(key)
        if ev.state == "raised" or entry is None:
            entry = AlarmEntry(ev.alarm_id, ev.bed, ev.condition, ev.priority, "active",
                               ev.value, ev.limit, ev.timestamp, ev.timestamp, source=source)
            self._by_key[key] = entry
            self._by_id[ev.alarm_id] = entry
        entry.value, entry.updated_at = ev.value, ev.timestamp
        if ev.state == "cleared":
            entry.condition_present = False
            # a high-priority alarm latches: it stays shown until someone acknowledges it
            if entry.priority != "high" or entry.acked_by is not None:
                entry.state = "cleared"
        return entry

    def _entry(self, alarm_id: str) -> AlarmEntry:
        entry = self._by_id.get(alarm_id)
        if entry is None:
            raise KeyError(f"no alarm with id {alarm_id!r}")
        return entry

    def acknowledge(self, alarm_id: str, user: str, at: float) -> AlarmEntry:
        entry = self._entry(alarm_id)
        entry.acked_by, entry.acked_at = user, at
        entry.silenced_until = None
        entry.state = "cleared" if not entry.condition_present else "acknowledged"
        return entry

    def silence(self, alarm_id: str, user: str, at: float, seconds: float) -> AlarmEntry:
        """Pause an alarm's sound for ``seconds``; it sounds again then if still present."""
        entry = self._entry(alarm_id)
        if entry.state == "cleared":
            raise ValueError(f"alarm {alarm_id!r} is already cleared; nothing to silence")
        entry.silenced_by, entry.silenced_until = user, at + seconds
        entry.state = "silenced"
        self._silenced[alarm_id] = entry
        return entry

    def expire_silences(self, now: float) -> list[AlarmEntry]:
        """Alarms whose silence ran out: active again if their condition is still there.
        Looks only at the alarms silenced, not the whole board (the station asks every second)."""
        changed = []
        for alarm_id, entry in list(self._silenced.items()):
            if entry.state != "silenced" or entry.silenced_until is None:
                del self._silenced[alarm_id]  # acknowledged or cleared since
                continue
            if now >= entry.silenced_until:
                del self._silenced[alarm_id]
                entry.silenced_until = None
                latched = entry.priority == "high" and entry.acked_by is None
                entry.state = "active" if entry.condition_present or latched else "cleared"
                changed.append(entry)
        return changed

    def entries(self, state: str | None = None) -> list[AlarmEntry]:
        items = [e for e in self._by_id.values() if state is None or e.state == state]
        items.sort(key=lambda e: (-PRIORITY_RANK.get(e.priority, 0), -e.raised_at))
        return items

    def get(self, alarm_id: str) -> AlarmEntry | None:
        return self._by_id.get(alarm_id)
