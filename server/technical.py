"""Technical alarms: what the station itself notices about a bed, as opposed to the patient.

No telemetry for a while, the alarm connection gone, an SpO2 probe or an ECG lead off. They are
alarms like any other (journaled, shown, acknowledged), raised and cleared by the station.
"""

from __future__ import annotations

from collections.abc import Iterable

from vitalsim.flags import Flags
from vitalsim.protocol import AlarmMessage

from .alarm_source import station_alarm_id
from .beds import BedState

# condition -> priority
CONDITIONS = {
    "TELEMETRY LOST": "medium",
    "ALARM LINK LOST": "medium",
    "SPO2 PROBE OFF": "low",
    "ECG LEAD OFF": "low",
}


class TechnicalAlarms:
    """Raises each condition when it appears and clears it when it ends.

    The station checks a slice of the ward at each push tick, every bed once a second, so that
    no tick judges a whole large ward at once. At most ``raises_per_second`` new alarms are
    raised per second of ``now``, whichever slices they fall in: when a whole ward loses its
    network at once, the rest are raised in the next seconds, as their beds come round again,
    so a flood of technical alarms reaches the dashboards as a steady stream they can keep up
    with, and none is lost. Clearing is never held back.

    After a restart, :meth:`replay` gives back the alarms the journal says are still raised; a
    condition the station cannot judge yet (no telemetry heard since the restart) stays raised
    until it can, and then clears if it has ended."""

    def __init__(self, *, telemetry_timeout: float = 10.0, raises_per_second: int = 20) -> None:
        self.telemetry_timeout = telemetry_timeout
        self.raises_per_second = raises_per_second
        self._second: float | None = None  # when the current second of raises began
        self._raised = 0  # raised in it
        self._active: dict[tuple[int, str], str] = {}
        self._counter = 0
        self.deferred = 0  # raises held back to a later check by the rate limit

    @property
    def active(self) -> dict[tuple[int, str], str]:
        """(bed, condition) -> the id of the raising event, for every raised condition."""
        return dict(self._active)

    def replay(self, event: AlarmMessage) -> None:
        """One technical alarm event from the journal, in journal order."""
        key = (event.bed, event.condition)
        if event.state == "raised":
            self._active[key] = event.alarm_id
        elif event.state == "cleared" and self._active.get(key) == event.alarm_id[:-1]:
            del self._active[key]

    @staticmethod
    def known(bed: BedState) -> set[str]:
        """The conditions the station can judge now: the telemetry ones once it has heard the
        bed, the alarm link once the link has been seen since this station started."""
        out = set()
        if bed.latest is not None:
            out |= {"TELEMETRY LOST", "SPO2 PROBE OFF", "ECG LEAD OFF"}
        if bed.alarm_link_seen:
            out.add("ALARM LINK LOST")
        return out

    def present(self, bed: BedState, now: float) -> set[str]:
        out = set()
        if bed.latest is not None and now - bed.received_at > self.telemetry_timeout:
            out.add("TELEMETRY LOST")
        if bed.alarm_link_seen and not bed.alarm_connected:
            out.add("ALARM LINK LOST")
        flags = bed.latest.flags if bed.latest is not None else 0
        if flags & Flags.PROBE_OFF:
            out.add("SPO2 PROBE OFF")
        if flags & Flags.LEAD_OFF:
            out.add("ECG LEAD OFF")
        return out

    def check(self, beds: Iterable[BedState], now: float) -> list[AlarmMessage]:
        """Raise the conditions that appeared and clear those that went, since ``beds`` were
        last checked."""
        events = []
        if self._second is None or now - self._second >= 1.0 or now < self._second:
            self._second, self._raised = now, 0
        for bed in sorted(beds, key=lambda b: b.bed):
            present, known = self.present(bed, now), self.known(bed)
            for condition in CONDITIONS:
                key = (bed.bed, condition)
                active = key in self._active
                if condition in present and not active:
                    if self._raised >= self.raises_per_second:
                        self.deferred += 1
                        continue
                    self._raised += 1
                    self._counter += 1
                    alarm_id = station_alarm_id(bed.bed, now, self._counter)
                    self._active[key] = alarm_id
                    events.append(self._event(alarm_id, bed, condition, "raised", now))
                elif condition not in present and active and condition in known:
                    raising = self._active.pop(key)
                    events.append(self._event(f"{raising}c", bed, condition, "cleared", now))
        return events

    @staticmethod
    def _event(alarm_id: str, bed: BedState, condition: str, state: str,
               now: float) -> AlarmMessage:
        return AlarmMessage(alarm_id, bed.device_id, bed.bed, condition, CONDITIONS[condition],
                            state, None, None, now)
