"""The station's view of alarms: one entry per (bed, condition), with its lifecycle as
IEC 60601-1-8 means it.

Device events (raised, updated, cleared) and nurse actions (acknowledge, silence, audio pause)
both change an entry. The board is pure: every change takes the time as an argument, so its
timers (a silence ending, an acknowledged alarm sounding again) are tested on numbers, not on a
clock. It can be rebuilt from the journal, so a restarted station shows what it showed.

The rules a nurse relies on:

- **One entry per bed and condition.** A re-raise of the same condition folds into its entry
  (``raises`` counts them) instead of adding one more to acknowledge. The entry keeps the id of
  its first raise; every later event id finds it too.
- **Acknowledge stops the sound, not the sign.** While the condition lasts the entry stays
  ``acknowledged`` (shown steady, silent); it sounds again (``active``) ``resound_after``
  seconds later if the condition is still there. Acknowledged after the condition ended, it is
  ``cleared``.
- **High priority latches**: it stays ``active`` after its condition ends, until acknowledged.
- **Worst value**: the entry keeps the worst value of its parameter in this episode, from the
  events and from the bed's numerics (:meth:`AlarmBoard.observe`); the live value is the bed's.
- **Audio pause per bed**: a bed's alarms make no sound until the pause ends (the dashboard
  counts it down). It changes no entry's state: the visual signals go on.
- **Order**: by priority first, so a silenced or acknowledged red alarm never sorts below an
  active yellow one; cleared entries last.
- **A device that restarted speaks for itself again.** Its monitor starts afresh and raises
  what is present now; a condition an earlier boot raised and never cleared is no longer
  reported by anyone, so when the bed's telemetry comes from a newer boot
  (:meth:`AlarmBoard.device_restarted`) such an entry ends as if cleared (a high-priority one
  stays latched until acknowledged), with "ended: device restarted" in the history. Without
  this, a restarted ward showed the last run's ASYSTOLE as present over a sinus rhythm.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass

from vitalsim.alarms import LABELS
from vitalsim.protocol import AlarmMessage

PRIORITY_RANK = {"high": 3, "medium": 2, "low": 1}
#: within a priority: what needs a nurse first
STATE_RANK = {"active": 0, "silenced": 1, "acknowledged": 2, "cleared": 3}
#: the parameter a condition label names ("SpO2 LOW" -> "spo2"), longest label first so that
#: "NIBP SYS HIGH" is not read as something shorter
_LABEL_PARAMETERS = sorted(((label, p) for p, label in LABELS.items()),
                           key=lambda lp: -len(lp[0]))
HISTORY_LEN = 2000  # history records kept (the journal keeps everything)


def parameter_of(condition: str) -> str | None:
    """The numeric a condition label is about ("HR HIGH" -> "hr"); None for a condition that
    names no numeric (a rhythm such as "VF", a technical alarm)."""
    for label, parameter in _LABEL_PARAMETERS:
        if condition == label or condition.startswith(label + " "):
            return parameter
    return None


@dataclass
class AlarmEntry:
    alarm_id: str  # the id of the event that first raised it
    bed: int
    condition: str
    priority: str
    state: str  # active | silenced | acknowledged | cleared
    value: float | None  # the value the latest event carried
    limit: float | None
    raised_at: float  # when this episode began (the latest raise after a clear)
    updated_at: float
    condition_present: bool = True
    acked_by: str | None = None
    acked_at: float | None = None
    silenced_by: str | None = None
    silenced_until: float | None = None
    source: str = "device"  # "device" or "station" (technical alarms)
    parameter: str | None = None  # the numeric it is about (live value: the bed's numerics)
    direction: str | None = None  # "high" | "low": which way is worse
    worst: float | None = None  # the worst value of the parameter in this episode
    raises: int = 1  # raises folded into this entry
    first_raised_at: float = 0.0
    resound_at: float | None = None  # acknowledged: sounds again then if still present
    artefact: bool = False  # the device flagged the values behind it as artefact
    boot: int | None = None  # the boot of the device that last raised it (from the alarm id)

    def to_json(self) -> dict:
        return asdict(self)

    def worse(self, value: float | None) -> None:
        if value is None or self.direction is None:
            return
        if self.worst is None or (value > self.worst if self.direction == "high"
                                  else value < self.worst):
            self.worst = value


def boot_of(alarm_id: str) -> int | None:
    """The device boot in a device alarm id (``"1001-1796579241551616-3"``); None for an id
    without one (a technical alarm's, or a device's that predates boot ids)."""
    parts = alarm_id.split("-")
    boot = parts[1] if len(parts) >= 3 else ""
    return int(boot) if boot.isdigit() else None


def _direction(ev: AlarmMessage) -> str | None:
    if ev.condition.endswith(" HIGH"):
        return "high"
    if ev.condition.endswith(" LOW"):
        return "low"
    if ev.value is not None and ev.limit is not None and ev.value != ev.limit:
        return "high" if ev.value > ev.limit else "low"
    return None


class AlarmBoard:
    def __init__(self, *, resound_after: float | None = 120.0) -> None:
        """``resound_after``: seconds after an acknowledge when an alarm whose condition is
        still present sounds again (None: never, until it clears and is raised anew)."""
        self.resound_after = resound_after
        self._by_key: dict[tuple[int, str], AlarmEntry] = {}
        self._by_id: dict[str, AlarmEntry] = {}
        self._by_bed: dict[int, list[AlarmEntry]] = {}
        self._timed: dict[str, AlarmEntry] = {}  # silenced or acknowledged: a timer may end
        self._boots: dict[int, int] = {}  # bed -> the boot its telemetry came from last
        self.pauses: dict[int, tuple[float, str]] = {}  # bed -> (audio paused until, by whom)
        self.history: deque[dict] = deque(maxlen=HISTORY_LEN)

    # -- device events ---------------------------------------------------------------------

    def apply_event(self, ev: AlarmMessage, *, source: str = "device") -> AlarmEntry:
        key = (ev.bed, ev.condition)
        entry = self._by_key.get(key)
        parameter = getattr(ev, "parameter", None) or parameter_of(ev.condition)
        artefact = bool(getattr(ev, "artefact", False))
        if entry is None:
            entry = AlarmEntry(ev.alarm_id, ev.bed, ev.condition, ev.priority, "active",
                               ev.value, ev.limit, ev.timestamp, ev.timestamp, source=source,
                               parameter=parameter, direction=_direction(ev),
                               first_raised_at=ev.timestamp, artefact=artefact)
            entry.worse(ev.value)
            self._by_key[key] = entry
            self._by_bed.setdefault(ev.bed, []).append(entry)
            if ev.state != "raised":  # a clear whose raise we never saw: record, shown cleared
                entry.raises = 0
        elif ev.state == "raised" and self._by_id.get(ev.alarm_id) is not entry:
            entry.raises += 1
            if not entry.condition_present or entry.state == "cleared":
                # a new episode of the same condition: it sounds and needs acknowledging again
                entry.state, entry.raised_at = "active", ev.timestamp
                entry.acked_by = entry.acked_at = entry.resound_at = None
                entry.silenced_by = entry.silenced_until = None
                entry.worst = None
            if PRIORITY_RANK.get(ev.priority, 0) > PRIORITY_RANK.get(entry.priority, 0):
                entry.priority = ev.priority
            entry.limit, entry.parameter = ev.limit, parameter
            entry.direction = _direction(ev) or entry.direction
            entry.condition_present = True
            entry.worse(ev.value)
        self._by_id[ev.alarm_id] = entry
        entry.value, entry.updated_at, entry.artefact = ev.value, ev.timestamp, artefact
        if ev.state == "raised" and source == "device":
            entry.boot = boot_of(ev.alarm_id)
            if entry.boot is not None and entry.boot < self._boots.get(ev.bed, entry.boot):
                self._boots.pop(ev.bed)  # a raise from an older boot: look again next time
        if ev.state == "updated":
            entry.worse(ev.value)
        if ev.state == "cleared":
            entry.condition_present = False
            entry.resound_at = None
            # a high-priority alarm latches: it stays shown until someone acknowledges it
            if entry.priority != "high" or entry.acked_by is not None:
                entry.state = "cleared"
        if ev.state != "updated":
            self._record(ev.timestamp, entry, ev.state, ev.value)
        return entry

    def device_restarted(self, bed: int, boot: int, at: float) -> list[AlarmEntry]:
        """The bed's device now sends from ``boot``: end each condition an earlier boot raised
        and never cleared (see the module's rules), and return the entries that changed. A
        dictionary lookup for a bed with no alarm entry (the station calls it per datagram)."""
        if self._boots.get(bed) == boot:  # the boot it spoke from last: nothing to end
            return []
        self._boots[bed] = boot
        ended = []
        for entry in self._by_bed.get(bed, ()):
            if (entry.source != "device" or not entry.condition_present or entry.boot is None
                    or entry.boot >= boot):
                continue
            entry.condition_present = False
            entry.resound_at = None
            if entry.priority != "high" or entry.acked_by is not None:
                entry.state = "cleared"
            entry.updated_at = at
            self._record(at, entry, "ended: device restarted", None)
            ended.append(entry)
        return ended

    def observe(self, bed: int, numerics: object) -> None:
        """The bed's latest numerics (anything with the parameters as attributes: a
        ``NumericsMessage``): each present condition's worst value follows them. A dictionary
        lookup for a bed with no alarm entry (the station calls it per datagram)."""
        entries = self._by_bed.get(bed)
        if not entries:
            return
        for entry in entries:
            if entry.condition_present and entry.parameter is not None:
                entry.worse(getattr(numerics, entry.parameter, None))

    # -- what people do --------------------------------------------------------------------

    def _entry(self, alarm_id: str) -> AlarmEntry:
        entry = self._by_id.get(alarm_id)
        if entry is None:
            raise KeyError(f"no alarm with id {alarm_id!r}")
        return entry

    def acknowledge(self, alarm_id: str, user: str, at: float) -> AlarmEntry:
        """Stop the sound. While the condition lasts the entry stays (steady, ``acknowledged``)
        and sounds again after ``resound_after``; after the condition ended, it is cleared."""
        entry = self._entry(alarm_id)
        entry.acked_by, entry.acked_at = user, at
        entry.silenced_by = entry.silenced_until = None
        if entry.condition_present:
            entry.state = "acknowledged"
            if self.resound_after is not None:
                entry.resound_at = at + self.resound_after
                self._timed[entry.alarm_id] = entry
        else:
            entry.state, entry.resound_at = "cleared", None
        self._record(at, entry, "acknowledged", None, user)
        return entry

    def silence(self, alarm_id: str, user: str, at: float, seconds: float) -> AlarmEntry:
        """Pause an alarm's sound for ``seconds``; it sounds again then if still present."""
        entry = self._entry(alarm_id)
        if entry.state == "cleared":
            raise ValueError(f"alarm {alarm_id!r} is already cleared; nothing to silence")
        entry.silenced_by, entry.silenced_until = user, at + seconds
        entry.state = "silenced"
        self._timed[entry.alarm_id] = entry
        self._record(at, entry, "silenced", None, user)
        return entry

    def pause_bed(self, bed: int, user: str, at: float, seconds: float) -> float:
        """Pause every sound of ``bed`` for ``seconds`` (0 ends a pause); returns when it ends.
        The entries keep their states: a paused bed still shows its alarms."""
        if seconds <= 0:
            self.pauses.pop(bed, None)
        else:
            self.pauses[bed] = (at + seconds, user)
        self.history.append({"at": at, "bed": bed, "condition": None, "priority": None,
                             "what": "audio paused" if seconds > 0 else "audio resumed",
                             "value": seconds if seconds > 0 else None, "user": user,
                             "alarm_id": None, "parameter": None})
        return at + max(seconds, 0.0)

    def paused_until(self, bed: int, now: float) -> float | None:
        pause = self.pauses.get(bed)
        return pause[0] if pause is not None and pause[0] > now else None

    def expire(self, now: float) -> tuple[list[AlarmEntry], list[int]]:
        """The timers that ran out by ``now``: alarms sounding again (a silence ended, or an
        acknowledged alarm's condition outlasted ``resound_after``), and beds whose audio pause
        ended. Looks only at what has a timer, not the whole board (the station asks every
        second)."""
        changed = []
        for alarm_id, entry in list(self._timed.items()):
            if entry.state == "silenced" and entry.silenced_until is not None:
                if now >= entry.silenced_until:
                    del self._timed[alarm_id]
                    entry.silenced_until = None
                    latched = entry.priority == "high" and entry.acked_by is None
                    entry.state = "active" if entry.condition_present or latched else "cleared"
                    changed.append(entry)
            elif entry.state == "acknowledged" and entry.resound_at is not None:
                if now >= entry.resound_at:
                    del self._timed[alarm_id]
                    # still there after all this time: it needs a nurse again
                    entry.state, entry.resound_at = "active", None
                    entry.acked_by = entry.acked_at = None
                    self._record(now, entry, "sounding again", None)
                    changed.append(entry)
            else:
                del self._timed[alarm_id]  # acknowledged, cleared or raised anew since
        ended = [bed for bed, (until, _) in self.pauses.items() if now >= until]
        for bed in ended:
            del self.pauses[bed]
        return changed, ended

    def expire_silences(self, now: float) -> list[AlarmEntry]:
        """The alarms that sound again by ``now`` (see :meth:`expire`)."""
        return self.expire(now)[0]

    # -- views -----------------------------------------------------------------------------

    def entries(self, state: str | None = None) -> list[AlarmEntry]:
        items = [e for e in self._by_key.values() if state is None or e.state == state]
        items.sort(key=lambda e: (e.state == "cleared", -PRIORITY_RANK.get(e.priority, 0),
                                  STATE_RANK.get(e.state, 9), not e.condition_present,
                                  -e.raised_at))
        return items

    def get(self, alarm_id: str) -> AlarmEntry | None:
        return self._by_id.get(alarm_id)

    def pauses_json(self, now: float) -> list[dict]:
        """The audio pauses still running, with the seconds left (for a countdown)."""
        return [{"bed": bed, "until": until, "seconds": round(until - now, 1), "by": user}
                for bed, (until, user) in sorted(self.pauses.items()) if until > now]

    def history_json(self, bed: int | None = None, limit: int = 500) -> list[dict]:
        """What happened, newest first: raises, clears, acknowledgements, silences, pauses."""
        rows = [h for h in reversed(self.history) if bed is None or h["bed"] == bed]
        return rows[:limit]

    def _record(self, at: float, entry: AlarmEntry, what: str, value: float | None,
                user: str | None = None) -> None:
        self.history.append({"at": at, "bed": entry.bed, "condition": entry.condition,
                             "priority": entry.priority, "what": what, "value": value,
                             "user": user, "alarm_id": entry.alarm_id,
                             "parameter": entry.parameter})
