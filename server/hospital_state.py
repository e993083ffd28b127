"""What the hospital view knows, from MQTT messages: sans-I/O, time passed in.

Every ward's beds (their last vitals), their alarms (each event once, by alarm id) and whether
each ward's station is online (its retained status, or its Last Will). The view
(server/hospital.py) feeds it messages and serves what it holds to the dashboard.

QoS 1 is at least once: a bridge that lost a PUBACK in a reset publishes the alarm again, and a
broker re-delivers to a persistent subscriber what it had not seen acknowledged.
:class:`AlarmDedup` is the consumer's half of "exactly once by id".
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from . import mqtt_payloads
from .mqtt_topics import Parsed, TopicError, parse

# the dashboard keys beds by number: each ward's beds get a block of numbers of their own
WARD_BLOCK = 100_000


class AlarmDedup:
    """The alarm ids seen, oldest forgotten beyond ``window`` (a bound on memory: an id
    re-delivered after ``window`` newer ones would pass again; the bridge re-sends within
    seconds). ``first(alarm_id)`` is True exactly once per id."""

    def __init__(self, window: int = 200_000) -> None:
        self.window = window
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.duplicates = 0

    def first(self, alarm_id: str) -> bool:
        if alarm_id in self._seen:
            self.duplicates += 1
            return False
        self._seen[alarm_id] = None
        if len(self._seen) > self.window:
            self._seen.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._seen)


@dataclass
class WardView:
    name: str
    index: int  # the ward's block of bed keys
    online: bool | None = None  # None: no status heard yet
    status_at: float | None = None
    changed_at: float | None = None  # when this view saw it change
    beds: dict[int, dict] = field(default_factory=dict)  # ward's bed -> last vitals

    def to_json(self) -> dict:
        return {"ward": self.name, "online": self.online, "status_at": self.status_at,
                "changed_at": self.changed_at, "beds": len(self.beds)}


class Hospital:
    """``hospital.receive(topic, payload, now)`` returns what changed, as
    ``("vitals", key)``, ``("alarm", entry)`` or ``("ward", WardView)``, or raises
    :class:`TopicError`, counted by reason in ``rejected``."""

    def __init__(self, *, dedup_window: int = 200_000) -> None:
        self.wards: dict[str, WardView] = {}
        self.beds: dict[int, dict] = {}  # key -> summary with ward, ward_bed
        self.alarms: dict[str, dict] = {}  # "ward/entry id" -> entry with ward, ward_bed
        self.dedup = AlarmDedup(dedup_window)
        self.rejected: Counter[str] = Counter()
        self.received: Counter[str] = Counter()

    def ward(self, name: str) -> WardView:
        view = self.wards.get(name)
        if view is None:
            view = self.wards[name] = WardView(name, len(self.wards) + 1)
        return view

    def key(self, ward: WardView, bed: int) -> int:
        if not 0 < bed < WARD_BLOCK:
            raise TopicError(f"bed {bed} of ward {ward.name} is outside 1..{WARD_BLOCK - 1}",
                             reason="out_of_range")
        return ward.index * WARD_BLOCK + bed

    def receive(self, topic: str, payload: bytes, now: float) -> tuple[str, object] | None:
        try:
            msg = parse(topic, payload)
            return self._take(msg, now)
        except TopicError as exc:
            self.rejected[exc.reason] += 1
            raise

    def _take(self, msg: Parsed, now: float) -> tuple[str, object] | None:
        # every field passed on to browsers is checked before anything is kept
        if msg.kind == "vitals":
            body = mqtt_payloads.vitals(msg.body, now)
        elif msg.kind == "alarm":
            body = {"alarm_id": msg.body["alarm_id"],
                    "entry": mqtt_payloads.alarm_entry(msg.body["entry"], now)}
        else:
            body = mqtt_payloads.status(msg.body, now)
        ward = self.ward(msg.ward)
        self.received[msg.kind] += 1
        if msg.kind == "vitals":
            assert msg.bed is not None
            key = self.key(ward, msg.bed)
            summary = {**body, "bed": key, "ward": ward.name, "ward_bed": msg.bed}
            if ward.online is False:
                summary["stale"] = True
            ward.beds[msg.bed] = summary
            self.beds[key] = summary
            return ("vitals", key)
        if msg.kind == "alarm":
            event_id = f"{ward.name}/{body['alarm_id']}"  # the dedup key: the event's id
            entry = body["entry"]
            key = self.key(ward, entry["bed"])
            if not self.dedup.first(event_id):
                return None
            # shown as the board's entry (keyed by the id of the event that raised it, so that
            # its clearing updates it), with the event that brought it
            shown = {**entry, "alarm_id": f"{ward.name}/{entry.get('alarm_id')}", "bed": key,
                     "ward": ward.name, "ward_bed": entry["bed"], "event_id": event_id}
            self.alarms[shown["alarm_id"]] = shown
            return ("alarm", shown)
        online, at = body["online"], body.get("at")
        if ward.online != online:
            ward.changed_at = now
        ward.online = online
        ward.status_at = at
        if not online:  # an offline ward's values are not current (the next vitals say)
            for summary in ward.beds.values():
                summary["stale"] = True
        return ("ward", ward)

    def wards_json(self) -> list[dict]:
        return [w.to_json() for w in sorted(self.wards.values(), key=lambda w: w.index)]
