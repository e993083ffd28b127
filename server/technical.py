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
    def __init__(self, *, telemetry_timeout: float = 10.0) -> None:
        self.telemetry_timeout = telemetry_timeout
        self._active: dict[tuple[int, str], str] = {}
        self._counter = 0

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
        """Raise the conditions that appeared and clear those that went, since the last check."""
        events = []
        for bed in beds:
            present = self.present(bed, now)
            for condition in CONDITIONS:
                key = (bed.bed, condition)
                active = key in self._active
                if condition in present and not active:
                    self._counter += 1
                    alarm_id = station_alarm_id(bed.bed, now, self._counter)
                    self._active[key] = alarm_id
                    events.append(self._event(alarm_id, bed, condition, "raised", now))
                elif condition not in present and active:
                    raised = self._active.pop(key)
                    events.append(self._event(f"{raised}c", bed, condition, "cleared", now))
        return events

    @staticmethod
    def _event(alarm_id: str, bed: BedState, condition: str, state: str,
               now: float) -> AlarmMessage:
        return AlarmMessage(alarm_id, bed.device_id, bed.bed, condition, CONDITIONS[condition],
                            state, None, None, now)
