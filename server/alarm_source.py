"""Whose alarm is it: a device's, or the station's own technical alarm.

The journal stores both kinds in one table; an alarm's source is read from its id. The station
gives its technical alarms ids that start with :data:`STATION_PREFIX`, and a device's ids start
with its device id (a number), so the two can never collide. This module is the one place that
knows it: the station, the journal, the course's recorders and the tests all ask here.
"""

from __future__ import annotations

from typing import Literal

STATION_PREFIX = "station-"

#: SQL conditions on ``alarm_id`` that keep only the station's, or only the devices', alarms
STATION_ONLY_SQL = f"alarm_id LIKE '{STATION_PREFIX}%'"
DEVICE_ONLY_SQL = f"alarm_id NOT LIKE '{STATION_PREFIX}%'"


def station_alarm_id(bed: int, now: float, counter: int) -> str:
    """The id of a technical alarm the station raises."""
    return f"{STATION_PREFIX}{bed}-{now:.3f}-{counter}"


def alarm_source(alarm_id: str) -> Literal["station", "device"]:
    return "station" if alarm_id.startswith(STATION_PREFIX) else "device"
