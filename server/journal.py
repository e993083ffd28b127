"""The alarm journal: every alarm event in SQLite (WAL mode), written *before* it is ACKed.

The alarm id is the primary key, so a re-sent alarm is recorded once: :meth:`record` says whether
the id was new. A station restarted on the same file keeps every alarm and its state.
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

from vitalsim.protocol import AlarmMessage

from .alarm_source import DEVICE_ONLY_SQL, STATION_ONLY_SQL

SCHEMA = """
CREATE TABLE IF NOT EXISTS alarm_events (
    alarm_id    TEXT PRIMARY KEY,
    device_id   INTEGER NOT NULL,
    bed         INTEGER NOT NULL,
    condition   TEXT NOT NULL,
    priority    TEXT NOT NULL,
    state       TEXT NOT NULL,
    value       REAL,
    limit_value REAL,
    timestamp   REAL NOT NULL,
    received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS alarm_actions (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    alarm_id  TEXT NOT NULL,
    action    TEXT NOT NULL,
    user      TEXT NOT NULL,
    at        REAL NOT NULL
);
"""


class AlarmJournal:
    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        if self.path != ":memory:":
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self.duplicates = 0  # re-sent alarms this journal recognised and stored no second time

    def record(self, alarm: AlarmMessage, received_at: float) -> bool:
        """Store one alarm event durably; True if its id was new, False for a re-send.

        Nothing non-finite is ever stored (it would come back after every restart): a NaN or
        an infinity raises ValueError, whoever let it through."""
        for name in ("value", "limit", "timestamp"):
            number = getattr(alarm, name)
            if number is not None and not math.isfinite(number):
                raise ValueError(f"alarm {alarm.alarm_id!r}: {name}={number!r} is not finite; "
                                 "not journaled")
        if not math.isfinite(received_at):
            raise ValueError(f"received_at={received_at!r} is not finite")
        cur = self.db.execute(
            "INSERT OR IGNORE INTO alarm_events VALUES (?,?,?,?,?,?,?,?,?,?)",
            (alarm.alarm_id, alarm.device_id, alarm.bed, alarm.condition, alarm.priority,
             alarm.state, alarm.value, alarm.limit, alarm.timestamp, received_at),
        )
        if cur.rowcount != 1:
            self.duplicates += 1
            return False
        return True

    def record_action(self, alarm_id: str, action: str, user: str, at: float) -> None:
        """Store a nurse's action. Raises ValueError for text SQLite cannot store as UTF-8
        (a lone surrogate): the caller must not have applied the action yet."""
        for text in (alarm_id, action, user):
            text.encode("utf-8")  # UnicodeEncodeError is a ValueError
        self.db.execute("INSERT INTO alarm_actions (alarm_id, action, user, at) VALUES (?,?,?,?)",
                        (alarm_id, action, user, at))

    def events(self, since: float | None = None) -> list[dict]:
        rows = self.db.execute(
            "SELECT * FROM alarm_events WHERE received_at >= ? ORDER BY received_at",
            (since if since is not None else float("-inf"),),
        )
        return [dict(r) for r in rows]

    def actions(self) -> list[dict]:
        return [dict(r) for r in self.db.execute("SELECT * FROM alarm_actions ORDER BY id")]

    def count(self, source: str | None = None) -> int:
        """Alarm events journaled: all, or only the devices' (``source="device"``) or the
        station's own technical alarms (``source="station"``)."""
        where = {None: "", "device": f" WHERE {DEVICE_ONLY_SQL}",
                 "station": f" WHERE {STATION_ONLY_SQL}"}
        if source not in where:
            raise ValueError(f"source={source!r}; expected 'device', 'station' or None")
        return self.db.execute("SELECT COUNT(*) FROM alarm_events" + where[source]).fetchone()[0]

    def close(self) -> None:
        self.db.close()
