"""The hospital's MQTT topics and payloads, defined once for the bridge and the hospital view.

Sans-I/O: text and bytes in, values out, no sockets. docs/HOSPITAL.md describes the same
topics; a topic or a field that it does not describe is a bug.

| topic | QoS | retained | payload (JSON, strict) |
|---|---|---|---|
| ``hospital/{ward}/bed/{bed}/vitals`` | 0 | yes | the bed's summary, as the dashboard shows it |
| ``hospital/{ward}/alarms`` | 1 | no | ``{"alarm_id", "event": {...}, "entry": {...}}`` |
| ``hospital/{ward}/alarms/open`` | 1 | yes | ``{"station", "entries": [...], "more"}`` |
| ``hospital/{ward}/station/status`` | 1 | yes | ``{"online", "at", "station"}`` (Will: false) |
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

SCHEMA = 1
ROOT = "hospital"
WARD_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")  # used with fullmatch: "$" allows a final newline
# a bed level: ASCII digits only ("²".isdigit() is True, and int("²") raises)
BED_NUMBER = re.compile(r"[0-9]{1,6}")
# bounds on what a consumer takes: a payload beyond them is refused, never half read
MAX_PAYLOAD = 16 * 1024
# JSON nested deeper than this is refused on intake: what is taken in must go out again, and
# Python's json encoder recurses (975 levels were taken in, and then every page's snapshot
# failed with RecursionError). The deepest payload of ours is 4 levels
MAX_DEPTH = 32
# a ward's open alarms in one retained message: at most MAX_OPEN entries, MAX_OPEN_PAYLOAD bytes
MAX_OPEN = 200
MAX_OPEN_PAYLOAD = 256 * 1024


#: why a message is refused: a fixed set of keys, so that the counters and the logs stay
#: bounded whatever is published (the message of the last of each is kept, short)
REASONS = ("bad_topic", "bad_ward", "not_json", "not_object", "too_large", "too_deep",
           "bad_field", "out_of_range", "bed_mismatch", "unknown_ward", "too_many_wards",
           "too_many_beds", "internal_error")


class TopicError(ValueError):
    """A topic or payload that is not the hospital's: the message says what was wrong, and
    ``reason`` (one of REASONS) is the key it is counted under."""

    def __init__(self, message: str, reason: str = "bad_topic") -> None:
        super().__init__(message)
        self.reason = reason if reason in REASONS else "bad_field"


def check_ward(ward: str) -> str:
    """A ward name safe in a topic: letters, digits, ``_`` and ``-`` (no ``/``, ``+``, ``#``)."""
    if not isinstance(ward, str) or not WARD_NAME.fullmatch(ward):
        raise TopicError(f"ward name {ward!r} must be 1-32 letters, digits, '_' or '-' (it is a "
                         "topic level: no '/', '+' or '#')")
    return ward


def vitals_topic(ward: str, bed: int) -> str:
    return f"{ROOT}/{ward}/bed/{bed}/vitals"


def alarms_topic(ward: str) -> str:
    return f"{ROOT}/{ward}/alarms"


def open_alarms_topic(ward: str) -> str:
    """The ward's open alarm entries, retained: what a view that starts later shows at once."""
    return f"{ROOT}/{ward}/alarms/open"


def status_topic(ward: str) -> str:
    return f"{ROOT}/{ward}/station/status"


# what the hospital view subscribes to: every ward, with single-level wildcards. Statuses
# first: a ward comes into being with its station's status, and the broker sends each
# subscription's retained messages in the order of the subscriptions
SUBSCRIPTIONS = (f"{ROOT}/+/station/status", f"{ROOT}/+/alarms/open", f"{ROOT}/+/bed/+/vitals",
                 f"{ROOT}/+/alarms")


def encode(obj: dict) -> bytes:
    """Strict JSON: a NaN or an infinity is a bug upstream, refused here, never sent."""
    return json.dumps(obj, allow_nan=False, separators=(",", ":")).encode()


def status_payload(online: bool, at: float, station: str | None = None) -> bytes:
    """A station's status; ``station`` is the instance id of the station process that says
    it, so that a view tells two stations claiming one ward apart."""
    body: dict = {"schema": SCHEMA, "online": online, "at": at}
    if station is not None:
        body["station"] = station
    return encode(body)


@dataclass(frozen=True)
class Parsed:
    """One message understood: ``kind`` is vitals, alarm or status."""

    kind: str
    ward: str
    bed: int | None
    body: dict


def _not_json(token: str) -> None:
    raise ValueError(f"{token} is not JSON")


def depth(value: object) -> int:
    """How deeply ``value`` nests lists and objects (an object of numbers is 1), without
    recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def _finite(value: object, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise TopicError(f"{where}: non-finite number", reason="out_of_range")
    if isinstance(value, dict):
        for k, v in value.items():
            _finite(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _finite(v, f"{where}[{i}]")


def shown(topic: str) -> str:
    """A topic as an error message shows it: quoted, escaped, and short."""
    return repr(topic) if len(topic) <= 80 else repr(topic[:77]) + "..."


def parse(topic: str, payload: bytes) -> Parsed:
    """A received message, checked: the topic is one of the hospital's, the payload is a JSON
    object of at most MAX_PAYLOAD bytes with only finite numbers, and what it must carry. The
    fields the view passes on are checked by server/mqtt_payloads.py."""
    parts = topic.split("/")
    if len(parts) < 3 or parts[0] != ROOT:
        raise TopicError(f"topic {shown(topic)} is not under {ROOT}/")
    try:
        ward = check_ward(parts[1])
    except TopicError as exc:
        raise TopicError(str(exc), reason="bad_ward") from None
    kind = _kind(parts)
    if kind is None:
        raise TopicError(f"topic {shown(topic)} is not a hospital topic (vitals, alarms or "
                         "status)")
    where = shown(topic)
    limit = MAX_OPEN_PAYLOAD if kind == "open" else MAX_PAYLOAD
    if len(payload) > limit:
        raise TopicError(f"{where}: payload of {len(payload)} bytes is over {limit}",
                         reason="too_large")
    try:
        body = json.loads(payload, parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TopicError(f"{where}: payload is not JSON ({str(exc)[:60]})",
                         reason="not_json") from None
    except RecursionError:  # deeper than the decoder goes: deeper than MAX_DEPTH too
        raise TopicError(f"{where}: payload is nested more than {MAX_DEPTH} deep",
                         reason="too_deep") from None
    if not isinstance(body, dict):
        raise TopicError(f"{where}: payload is not a JSON object", reason="not_object")
    if depth(body) > MAX_DEPTH:
        raise TopicError(f"{where}: payload is nested more than {MAX_DEPTH} deep",
                         reason="too_deep")
    _finite(body, where)
    if kind == "vitals":
        if not BED_NUMBER.fullmatch(parts[3]) or not 0 < int(parts[3]) < 1_000_000:
            raise TopicError(f"{where}: bed {parts[3][:12]!r} is not a bed number")
        bed = int(parts[3])
        said = body.get("bed")
        if isinstance(said, bool) or said != bed:
            said_text = repr(said) if not isinstance(said, int) or abs(said) < 10**9 \
                else "a huge integer"
            raise TopicError(f"{where}: payload says bed {said_text[:20]}, topic says {bed}",
                             reason="bed_mismatch")
        return Parsed("vitals", ward, bed, body)
    if kind == "alarm":
        alarm_id, entry = body.get("alarm_id"), body.get("entry")
        if not isinstance(alarm_id, str) or not alarm_id or len(alarm_id) > 128 \
                or not isinstance(entry, dict):
            raise TopicError(f'{where}: an alarm needs "alarm_id" (text, at most 128 '
                             'characters) and "entry" (an object)', reason="bad_field")
        return Parsed("alarm", ward, None, body)
    if kind == "open":
        entries = body.get("entries")
        if not isinstance(entries, list) or len(entries) > MAX_OPEN:
            raise TopicError(f'{where}: open alarms need "entries" (a list of at most '
                             f"{MAX_OPEN})", reason="bad_field")
        return Parsed("open", ward, None, body)
    if not isinstance(body.get("online"), bool):
        raise TopicError(f'{where}: a status needs "online" (true or false)', reason="bad_field")
    return Parsed("status", ward, None, body)


def _kind(parts: list[str]) -> str | None:
    if len(parts) == 5 and parts[2] == "bed" and parts[4] == "vitals":
        return "vitals"
    if parts[2:] == ["alarms"]:
        return "alarm"
    if parts[2:] == ["alarms", "open"]:
        return "open"
    if parts[2:] == ["station", "status"]:
        return "status"
    return None
