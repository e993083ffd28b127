"""What the hospital view knows, from MQTT messages: sans-I/O, time passed in.

Every ward's beds (their last vitals), their alarms (each event once, by alarm id) and whether
each ward's station is online (its retained status, or its Last Will). The view
(server/hospital.py) feeds it messages and serves what it holds to the dashboard.

QoS 1 is at least once: a bridge that lost a PUBACK in a reset publishes the alarm again, and a
broker re-delivers to a persistent subscriber what it had not seen acknowledged.
:class:`AlarmDedup` is the consumer's half of "exactly once by id".
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field

from . import mqtt_payloads
from .mqtt_topics import REASONS, Parsed, TopicError, parse

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
    # the station instances that last said online for this ward, and have not said offline
    # (nor had their Last Will published): two is a conflict, shown, not flapped between
    claims: dict[str, float] = field(default_factory=dict)

    @property
    def conflict(self) -> list[str] | None:
        return sorted(self.claims) if len(self.claims) > 1 else None

    def to_json(self) -> dict:
        return {"ward": self.name, "online": self.online, "status_at": self.status_at,
                "changed_at": self.changed_at, "beds": len(self.beds),
                "conflict": self.conflict}


class Refusals:
    """Refused messages by reason (a fixed set: server/mqtt_topics.py ``REASONS``), with the
    last message of each kept short, and a log line at most once per reason per ``interval``
    seconds: the first of each reason at once, later ones with how many were not reported.
    Bounded whatever is published: a flood costs a counter, not a log line each."""

    MESSAGE_CHARS = 120

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        self.counts: Counter[str] = Counter()
        self.last: dict[str, str] = {}
        self._reported_at: dict[str, float] = {}
        self._unreported: Counter[str] = Counter()

    def refuse(self, reason: str, message: str, now: float) -> str | None:
        """Count one; return the line to log now, or None (reported later, with the count)."""
        if reason not in REASONS:
            reason = "internal_error"
        message = message if len(message) <= self.MESSAGE_CHARS \
            else message[:self.MESSAGE_CHARS - 3] + "..."
        self.counts[reason] += 1
        self.last[reason] = message
        at = self._reported_at.get(reason)
        if at is not None and now - at < self.interval:
            self._unreported[reason] += 1
            return None
        self._reported_at[reason] = now
        more = self._unreported.pop(reason, 0)
        return f"{reason}: {message}" + (f" (and {more} more {reason} in the last "
                                         f"{now - at:.0f} s)" if more and at is not None else "")

    def to_json(self) -> dict:
        return {reason: {"count": n, "last": self.last.get(reason)}
                for reason, n in sorted(self.counts.items())}


class Hospital:
    """``hospital.receive(topic, payload, now)`` returns what changed, as
    ``("vitals", key)``, ``("alarm", entry)`` or ``("ward", WardView)``, or None, or raises
    :class:`TopicError`, counted by reason in ``rejected`` (its ``report`` attribute the line
    to log, or None while that reason's reports are held back).

    A ward comes into being with its station's status (online, or its Last Will), never with
    a bed's vitals or an alarm alone: those of a ward not yet heard of wait, a bounded few, for
    its status (a persistent session's queued alarms come before the retained statuses), and
    are refused as ``unknown_ward`` when they are pushed out. At most ``max_wards`` wards and
    ``max_beds`` beds a ward: one more is refused (``too_many_wards``, ``too_many_beds``)."""

    def __init__(self, *, dedup_window: int = 200_000, max_wards: int = 32,
                 max_beds: int = 1024, held_limit: int = 2000,
                 refusals: Refusals | None = None) -> None:
        self.wards: dict[str, WardView] = {}
        self.beds: dict[int, dict] = {}  # key -> summary with ward, ward_bed
        self.alarms: dict[str, dict] = {}  # "ward/entry id" -> entry with ward, ward_bed
        self.dedup = AlarmDedup(dedup_window)
        self.refusals = refusals or Refusals()
        self.rejected = self.refusals.counts
        self.received: Counter[str] = Counter()
        self.max_wards, self.max_beds, self.held_limit = max_wards, max_beds, held_limit
        # messages of wards not heard of yet, oldest first: (ward, kind, bed, checked body)
        self._held: deque[tuple[str, str, int | None, dict]] = deque()
        # changes taken from held messages when their ward's status came (the view sends them)
        self.released: list[tuple[str, object]] = []

    def ward(self, name: str) -> WardView:
        view = self.wards.get(name)
        if view is None:
            if len(self.wards) >= self.max_wards:
                raise TopicError(f"ward {name!r} would be one more than the {self.max_wards} "
                                 "this view shows", reason="too_many_wards")
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
            exc.report = self.refusals.refuse(exc.reason, str(exc), now)  # type: ignore[attr-defined]
            raise

    @property
    def held(self) -> int:
        return len(self._held)

    def _hold(self, ward: str, kind: str, bed: int | None, body: dict, now: float) -> None:
        self._held.append((ward, kind, bed, body))
        while len(self._held) > self.held_limit:
            old = self._held.popleft()
            self.refusals.refuse("unknown_ward", f"ward {old[0]!r}: no status heard from its "
                                 "station before its messages were pushed out", now)

    def _release(self, ward: WardView, now: float) -> None:
        waiting = [h for h in self._held if h[0] == ward.name]
        if not waiting:
            return
        self._held = deque(h for h in self._held if h[0] != ward.name)
        for _, kind, bed, body in waiting:
            try:
                change = self._apply(ward, kind, bed, body, now)
            except TopicError as exc:
                self.refusals.refuse(exc.reason, str(exc), now)
                continue
            if change is not None:
                self.released.append(change)

    def _take(self, msg: Parsed, now: float) -> tuple[str, object] | None:
        # every field passed on to browsers is checked before anything is kept
        if msg.kind == "vitals":
            body = mqtt_payloads.vitals(msg.body, now)
        elif msg.kind == "alarm":
            body = {"alarm_id": msg.body["alarm_id"],
                    "entry": mqtt_payloads.alarm_entry(msg.body["entry"], now)}
        elif msg.kind == "open":
            body = {"entries": [mqtt_payloads.alarm_entry(e, now) for e in msg.body["entries"]]}
        else:
            body = mqtt_payloads.status(msg.body, now)
        if msg.kind != "status" and msg.ward not in self.wards:
            self._hold(msg.ward, msg.kind, msg.bed, body, now)
            return None
        ward = self.ward(msg.ward)
        change = self._apply(ward, msg.kind, msg.bed, body, now)
        if msg.kind == "status":
            self._release(ward, now)
        return change

    def _apply(self, ward: WardView, kind: str, bed: int | None, body: dict,
               now: float) -> tuple[str, object] | None:
        if kind == "vitals":
            assert bed is not None
            key = self.key(ward, bed)
            if bed not in ward.beds and len(ward.beds) >= self.max_beds:
                raise TopicError(f"bed {bed} would be one more than the {self.max_beds} of "
                                 f"ward {ward.name} this view shows", reason="too_many_beds")
            self.received[kind] += 1
            summary = {**body, "bed": key, "ward": ward.name, "ward_bed": bed}
            if ward.online is False:
                summary["stale"] = True
            ward.beds[bed] = summary
            self.beds[key] = summary
            return ("vitals", key)
        if kind == "alarm":
            event_id = f"{ward.name}/{body['alarm_id']}"  # the dedup key: the event's id
            entry = body["entry"]
            key = self.key(ward, entry["bed"])
            self.received[kind] += 1
            if not self.dedup.first(event_id):
                return None
            # shown as the board's entry (keyed by the id of the event that raised it, so that
            # its clearing updates it), with the event that brought it
            shown = {**entry, "alarm_id": f"{ward.name}/{entry['alarm_id']}", "bed": key,
                     "ward": ward.name, "ward_bed": entry["bed"], "event_id": event_id}
            self.alarms[shown["alarm_id"]] = shown
            return ("alarm", shown)
        if kind == "open":
            # the station's open alarms, retained: a view that starts later shows them at once.
            # An entry newer in the view (an event that came after) stays
            taken = []
            for entry in body["entries"]:
                key = self.key(ward, entry["bed"])
                alarm_id = f"{ward.name}/{entry['alarm_id']}"
                held = self.alarms.get(alarm_id)
                if held is not None and held["updated_at"] > entry["updated_at"]:
                    continue
                shown = {**entry, "alarm_id": alarm_id, "bed": key, "ward": ward.name,
                         "ward_bed": entry["bed"], "event_id": None}
                self.alarms[alarm_id] = shown
                taken.append(shown)
            self.received[kind] += 1
            return ("alarms", taken) if taken else None
        self.received[kind] += 1
        online, at, station = body["online"], body.get("at"), body.get("station") or ""
        if online:
            ward.claims[station] = now
            while len(ward.claims) > 4:  # bounded: the oldest claim goes
                del ward.claims[min(ward.claims, key=ward.claims.__getitem__)]
        else:
            ward.claims.pop(station, None)
            online = bool(ward.claims)  # another station still says it is online
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
