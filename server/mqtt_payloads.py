"""What the hospital view passes on to browsers, checked field by field: sans-I/O, time passed in.

Any client of the broker can publish (docs/HOSPITAL.md, "Security"), and every browser of the
hospital view draws what the view passes on: one ``"flags": "probe_off"`` (a string where the
dashboard calls ``flags.some``) broke the page for every ward in every browser. So a payload is
taken only when every field the view passes on has its type and a plausible range, the same
ranges the station holds its own devices to (``vitalsim.protocol.validate.NUMERIC_RANGES``);
otherwise the whole message is refused, with a reason naming the field. Fields the view does
not know are not passed on.

A vitals payload is the bed's summary (server/beds.py, server/station.py ``bed_summary``): every
field may be missing (the dashboard shows ``---``), none may be of another type. An alarm entry
(server/alarm_board.py ``AlarmEntry``) must carry every field, as the station sends it: the
dashboard reads them all.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from vitalsim.flags import Flags
from vitalsim.protocol.validate import MAX_SKEW, NUMERIC_RANGES
from vitalsim.rhythms import RHYTHM_NAMES

from .mqtt_topics import TopicError

# a check takes (value, where, now) and returns the value to pass on, or raises TopicError
Check = Callable[[object, str, float], object]

FLAG_NAMES = frozenset(f.name.lower() for f in Flags if f and f.name)
PRIORITIES = ("high", "medium", "low")
ALARM_STATES = ("active", "silenced", "acknowledged", "cleared")
NEWS2_BANDS = ("low", "low-medium", "medium", "high")
ACVPU = ("A", "C", "V", "P", "U")
#: how far ahead of the view's clock a time a station stamped may be: the station's own bound
#: for its devices' clocks
FUTURE_SKEW = MAX_SKEW
#: times that are meant to lie ahead (an audio pause's end, when an acknowledged alarm sounds
#: again) may lie at most this far ahead
AHEAD_LIMIT = 24 * 3600.0
#: a value an alarm carries, of a parameter without a range of its own
ANY_VALUE = (-1e6, 1e6)


def _bad(where: str, expected: str, value: object) -> TopicError:
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return TopicError(f"{where} must be {expected}, not {shown}", reason="bad_field")


def _range(where: str, value: object, low: float, high: float) -> TopicError:
    shown = repr(value) if not isinstance(value, int) or abs(value) < 10**12 else "a huge integer"
    return TopicError(f"{where}={shown[:40]} is outside {low:g}..{high:g}", reason="out_of_range")


def optional(check: Check) -> Check:
    def run(value: object, where: str, now: float) -> object:
        return None if value is None else check(value, where, now)
    return run


def number(low: float, high: float) -> Check:
    def run(value: object, where: str, now: float) -> object:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(where, "a number", value)
        if isinstance(value, float) and not math.isfinite(value):
            raise TopicError(f"{where}: non-finite number", reason="out_of_range")
        if not low <= value <= high:  # exact for a 4000-digit integer too (no float overflow)
            raise _range(where, value, low, high)
        return value
    return run


def integer(low: int, high: int) -> Check:
    def run(value: object, where: str, now: float) -> object:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(where, "an integer", value)
        if not low <= value <= high:
            raise _range(where, value, low, high)
        return value
    return run


def boolean(value: object, where: str, now: float) -> object:
    if not isinstance(value, bool):
        raise _bad(where, "true or false", value)
    return value


def text(max_len: int = 64, choices: tuple[str, ...] | frozenset[str] | None = None) -> Check:
    def run(value: object, where: str, now: float) -> object:
        if not isinstance(value, str):
            raise _bad(where, "text", value)
        if choices is not None and value not in choices:
            raise _bad(where, "one of " + ", ".join(sorted(choices)), value)
        if len(value) > max_len:
            raise TopicError(f"{where} is {len(value)} characters, over {max_len}",
                             reason="out_of_range")
        if not value.isprintable() or _lone_surrogate(value):
            raise _bad(where, "printable text", value)
        return value
    return run


def _lone_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def moment(ahead: float = FUTURE_SKEW) -> Check:
    """A wall-clock time (seconds since 1970): not negative, and at most ``ahead`` seconds after
    the view's clock."""
    def run(value: object, where: str, now: float) -> object:
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or (isinstance(value, float) and not math.isfinite(value)):
            raise _bad(where, "a time (seconds since 1970)", value)
        if value < 0:
            raise _range(where, value, 0, now + ahead)
        if value - now > ahead:
            raise TopicError(f"{where} is {value - now:.0f} s ahead of the view's clock (at "
                             f"most {ahead:g} s allowed)", reason="out_of_range")
        return value
    return run


def list_of(item: Check, max_items: int) -> Check:
    def run(value: object, where: str, now: float) -> object:
        if not isinstance(value, list):
            raise _bad(where, "a list", value)
        if len(value) > max_items:
            raise TopicError(f"{where} has {len(value)} items, over {max_items}",
                             reason="out_of_range")
        return [item(v, f"{where}[{i}]", now) for i, v in enumerate(value)]
    return run


def mapping(key: Check, item: Check, max_items: int) -> Check:
    """An object whose keys and values are each checked (a NEWS2 set's scores)."""
    def run(value: object, where: str, now: float) -> object:
        if not isinstance(value, dict):
            raise _bad(where, "an object", value)
        if len(value) > max_items:
            raise TopicError(f"{where} has {len(value)} fields, over {max_items}",
                             reason="out_of_range")
        return {key(k, f"{where} key", now): item(v, f"{where}.{k}", now)
                for k, v in value.items()}
    return run


def record(fields: dict[str, Check], *, required: bool) -> Check:
    """An object with these fields (all present if ``required``); others are not passed on."""
    def run(value: object, where: str, now: float) -> object:
        if not isinstance(value, dict):
            raise _bad(where, "an object", value)
        out = {}
        for name, check in fields.items():
            if name in value:
                out[name] = check(value[name], f"{where}.{name}" if where else name, now)
            elif required:
                raise TopicError(f"{where or 'payload'} has no {name!r}", reason="bad_field")
        return out
    return run


def _numeric(name: str) -> Check:
    return optional(number(*NUMERIC_RANGES[name]))


NEWS2 = record({
    "at": moment(), "trigger": optional(text(32)), "by": optional(text(64)),
    "total": integer(0, 20), "band": text(16, NEWS2_BANDS), "complete": boolean,
    "missing": list_of(text(16), 8), "scores": optional(mapping(text(24), integer(0, 3), 12)),
    "supplemental_o2": optional(boolean), "consciousness": optional(text(1, ACVPU)),
    "assumed": list_of(text(64), 4),
    "values": optional(record({k: _numeric(k) for k in ("rr", "spo2", "temp", "nibp_sys", "hr")},
                              required=False)),
}, required=False)

#: a bed's summary as the station publishes it (server/beds.py BedState.summary and
#: server/station.py Station.bed_summary), each field checked
VITALS = record({
    "bed": integer(1, 999_999),
    "device_id": integer(0, 2**32 - 1),
    "alarm_connected": boolean,
    "stale": boolean,
    **{name: _numeric(name) for name in ("hr", "spo2", "rr", "temp", "nibp_sys", "nibp_dia",
                                         "nibp_map", "nibp_time", "etco2", "abp_sys", "abp_dia",
                                         "abp_map")},
    "rhythm": optional(text(24, RHYTHM_NAMES)),
    "pvc_per_min": optional(integer(0, 255)),
    "flags": list_of(text(32, FLAG_NAMES), len(FLAG_NAMES)),
    "sent_at": optional(moment()),
    "received_at": optional(moment()),
    "news2": optional(NEWS2),
    "patient": optional(text(64)),
    "scenario": optional(text(64)),
    "nibp_at": optional(moment()),
    "nibp_mode": optional(text(32)),
}, required=False)


def _alarm_value(value: object, where: str, now: float) -> object:
    return None if value is None else number(*ANY_VALUE)(value, where, now)


#: an alarm board entry (server/alarm_board.py AlarmEntry.to_json): every field, as the
#: dashboard reads them all
ALARM_ENTRY = record({
    "alarm_id": text(128),
    "bed": integer(1, 999_999),
    "condition": text(64),
    "priority": text(8, PRIORITIES),
    "state": text(16, ALARM_STATES),
    "value": _alarm_value,
    "limit": _alarm_value,
    "raised_at": moment(),
    "updated_at": moment(),
    "condition_present": boolean,
    "acked_by": optional(text(64)),
    "acked_at": optional(moment()),
    "silenced_by": optional(text(64)),
    "silenced_until": optional(moment(AHEAD_LIMIT)),
    "source": text(8, ("device", "station")),
    "parameter": optional(text(32)),
    "direction": optional(text(4, ("high", "low"))),
    "worst": _alarm_value,
    "raises": integer(1, 10**9),
    "first_raised_at": moment(),
    "resound_at": optional(moment(AHEAD_LIMIT)),
    "artefact": boolean,
    "boot": optional(integer(0, 2**64 - 1)),
}, required=True)


def vitals(body: dict, now: float) -> dict:
    """The fields of a bed's summary the view passes on, each checked (TopicError if not)."""
    return VITALS(body, "", now)  # type: ignore[return-value]


def alarm_entry(entry: object, now: float) -> dict:
    """An alarm board entry, every field checked (TopicError naming the first that is not)."""
    return ALARM_ENTRY(entry, "entry", now)  # type: ignore[return-value]


#: a station's status (server/mqtt_topics.py status_payload); the Last Will is one too
STATUS = record({"online": boolean, "at": optional(moment()), "station": optional(text(32))},
                required=False)


def status(body: dict, now: float) -> dict:
    return STATUS(body, "", now)  # type: ignore[return-value]
