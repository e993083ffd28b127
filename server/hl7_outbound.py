"""The station's HL7 v2 outbound interface: vitals (PCD-01) and alarms (PCD-04) over MLLP.

Off unless the station is given a receiver (``python -m server --hl7 HOST:PORT``). Every
message goes through an outbox in the station's own SQLite journal (:class:`Hl7Outbox`):

- each alarm event the journal holds (raised, cleared) and each acknowledgement becomes one
  ``ORU^R40`` with its own control id (MSH-10), in one transaction with the journal cursor, so a
  station stopped at any moment neither skips an alarm nor makes a second message for it;
- each bed's latest numerics become an ``ORU^R01`` every ``interval`` seconds;
- a message leaves the outbox only when the receiver answers it (``ACK`` / ``ORA^R41`` whose
  MSA-2 is its control id) with AA. No answer within ``ack_timeout``, a lost connection, or
  an AE answer: the same message, with the same control id, is sent again (after ``retry``
  seconds) before any other, so the receiver can tell a re-send from a new message and
  messages arrive in order. AR (the receiver will never take it) is retried ``max_rejects``
  times, then the message is set aside as ``rejected`` and counted, not to block the rest.

Alarms go before vitals; pending vitals beyond ``max_pending_vitals`` (a receiver down for
long) are dropped oldest first and counted, alarms never.

HL7's original acknowledgement mode, one message in flight at a time: the same stop-and-wait
as the alarm channel's application ACK, in a standard from 1987. The framing is
:mod:`vitalsim.protocol.mllp`; this module is the thin asyncio glue around it and the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tornado.ioloop import PeriodicCallback

from vitalsim.clock import Clock
from vitalsim.protocol import NumericsMessage
from vitalsim.protocol.alarm_channel import RemoteProtocolError
from vitalsim.protocol.mllp import DEFAULT_MAX_MESSAGE, MllpDeframer, frame

from . import hl7_messages
from .alarm_source import alarm_source
from .journal import AlarmJournal
from .ratelog import RejectLog

log = logging.getLogger("server.hl7")

SCHEMA = """
CREATE TABLE IF NOT EXISTS hl7_outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    control_id   TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    source       TEXT UNIQUE,
    bed          INTEGER NOT NULL,
    message      TEXT NOT NULL,
    created_at   REAL NOT NULL,
    sends        INTEGER NOT NULL DEFAULT 0,
    last_sent_at REAL,
    status       TEXT NOT NULL DEFAULT 'pending',
    ack_code     TEXT,
    ack_text     TEXT,
    acked_at     REAL
);
CREATE TABLE IF NOT EXISTS hl7_cursor (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

VITALS, ALARM = "ORU^R01", "ORU^R40"

# the answer codes HL7 v2 defines for MSA-1 (original and enhanced acknowledgement); an answer
# with any other code is refused as ``bad_answer_code`` and treated as an AR, so that what a
# receiver writes there never becomes a key in the station's counters
ANSWER_CODES = ("AA", "AE", "AR", "CA", "CE", "CR")
# how much of a receiver's text (its ERR, a bad code) goes into a problem message or a log line
MAX_SHOWN = 120


def shown(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` as a problem message shows it: repr'd, cut to about ``limit`` characters with
    the length it had, so that a receiver cannot fill the station's log or stats."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def parse_target(text: str) -> tuple[str, int]:
    """``"HOST:PORT"`` (as ``--hl7`` takes it; an IPv6 address in brackets, ``[::1]:2575``) as
    (host, port), the brackets taken off; ValueError says what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--hl7 {text!r}: expected HOST:PORT, e.g. 127.0.0.1:2575 or "
                         "[::1]:2575")
    if host.startswith("[") and host.endswith("]") and len(host) > 2:
        host = host[1:-1]
    elif ":" in host or "[" in host or "]" in host:
        raise ValueError(f"--hl7 {text!r}: an IPv6 address goes in brackets, e.g. [::1]:2575")
    return host, int(port)


def format_target(target: tuple[str, int]) -> str:
    """(host, port) as HOST:PORT, an IPv6 address in brackets: what ``parse_target`` reads."""
    host, port = target
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Pending:
    seq: int
    control_id: str
    kind: str
    message: str


class Hl7Outbox:
    """The outbox, in the journal's database. Its rows outlive the station."""

    def __init__(self, journal: AlarmJournal, clock: Clock,
                 patient_of: Callable[[int], str | None] = lambda bed: None) -> None:
        self.db = journal.db
        self.clock = clock
        self.patient_of = patient_of
        self.db.executescript(SCHEMA)
        # control ids are "<identity>-<seq>": seq counts in this database, the identity is a
        # random 64-bit number drawn when the outbox is made and kept in it, so that two
        # stations (even started in the same second) never send the same control id, while a
        # station restarted on its journal sends an unanswered message again under its id
        self.db.execute("INSERT OR IGNORE INTO hl7_cursor VALUES ('identity', ?)",
                        (secrets.randbits(64) - (1 << 63),))  # SQLite's INTEGER is signed
        self.identity = self._cursor("identity") & ((1 << 64) - 1)

    def _cursor(self, name: str) -> int:
        row = self.db.execute("SELECT value FROM hl7_cursor WHERE name = ?", (name,)).fetchone()
        return 0 if row is None else int(row[0])

    def _insert(self, kind: str, source: str | None, bed: int,
                build: Callable[[str], str]) -> None:
        now = self.clock.now()
        cur = self.db.execute(
            "INSERT INTO hl7_outbox (control_id, kind, source, bed, message, created_at) "
            "VALUES (?, ?, ?, ?, '', ?)", (f"tmp-{source}-{now}", kind, source, bed, now))
        seq = cur.lastrowid
        control_id = f"{self.identity:016x}-{seq}"
        self.db.execute("UPDATE hl7_outbox SET control_id = ?, message = ? WHERE seq = ?",
                        (control_id, build(control_id), seq))

    def sync_alarms(self) -> int:
        """One ``ORU^R40`` for each alarm event and acknowledgement journaled since the last
        call (or the last run): made and the cursor moved in one transaction. The count made."""
        events = self.db.execute(
            "SELECT rowid AS rid, * FROM alarm_events WHERE rowid > ? ORDER BY rowid",
            (self._cursor("events"),)).fetchall()
        actions = self.db.execute(
            "SELECT * FROM alarm_actions WHERE id > ? ORDER BY id",
            (self._cursor("actions"),)).fetchall()
        if not events and not actions:
            return 0
        items = sorted([(r["received_at"], 0, r["rid"], "event", r) for r in events]
                       + [(r["at"], 1, r["id"], "action", r) for r in actions],
                       key=lambda item: item[:3])
        made = 0
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for _, _, number, kind, row in items:
                report = self._report(kind, row)
                if report is None:
                    continue
                patient = self.patient_of(report.bed)
                self._insert(ALARM, f"{kind}:{number}", report.bed,
                             lambda cid, r=report, p=patient: hl7_messages.alarm_message(
                                 r, cid, self.clock.now(), p))
                made += 1
            if events:
                self.db.execute("INSERT OR REPLACE INTO hl7_cursor VALUES ('events', ?)",
                                (events[-1]["rid"],))
            if actions:
                self.db.execute("INSERT OR REPLACE INTO hl7_cursor VALUES ('actions', ?)",
                                (actions[-1]["id"],))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return made

    def _report(self, kind: str, row: sqlite3.Row) -> hl7_messages.AlarmReport | None:
        """The PCD-04 event a journal row is: a raise, an update, a clear, or an
        acknowledgement (silences are not sent)."""
        if kind == "action":
            if row["action"] != "acknowledge":
                return None
            raised = self.db.execute("SELECT * FROM alarm_events WHERE alarm_id = ?",
                                     (row["alarm_id"],)).fetchone()
            if raised is None:
                return None
            return self._from_event(raised, "acknowledged", raised["alarm_id"], row["at"])
        if row["state"] == "raised":
            return self._from_event(row, "raised", row["alarm_id"], row["timestamp"])
        raised = self.db.execute(
            "SELECT alarm_id FROM alarm_events WHERE bed = ? AND condition = ? AND "
            "state = 'raised' AND rowid < ? ORDER BY rowid DESC LIMIT 1",
            (row["bed"], row["condition"], row["rid"])).fetchone()
        identity = raised["alarm_id"] if raised is not None else row["alarm_id"]
        if row["state"] == "updated":
            return self._from_event(row, "updated", identity, row["timestamp"])
        acked = self.db.execute(
            "SELECT 1 FROM alarm_actions WHERE alarm_id = ? AND action = 'acknowledge'",
            (identity,)).fetchone()
        return self._from_event(row, "cleared", identity, row["timestamp"],
                                latched=row["priority"] == "high" and acked is None)

    @staticmethod
    def _from_event(row: sqlite3.Row, event: str, identity: str, at: float, *,
                    latched: bool = False) -> hl7_messages.AlarmReport:
        return hl7_messages.AlarmReport(
            identity, event, row["device_id"], row["bed"], row["condition"], row["priority"],
            row["value"], row["limit_value"], at, source=alarm_source(row["alarm_id"]),
            latched=latched)

    def add_vitals(self, readings: Iterable[NumericsMessage], max_pending: int) -> int:
        """An ``ORU^R01`` per reading; then the oldest pending vitals beyond ``max_pending``
        are dropped. The count dropped."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for reading in readings:
                patient = self.patient_of(reading.bed)
                self._insert(VITALS, None, reading.bed,
                             lambda cid, r=reading, p=patient: hl7_messages.vitals_message(
                                 r, cid, self.clock.now(), p))
            dropped = self.db.execute(
                "UPDATE hl7_outbox SET status = 'dropped' WHERE seq IN (SELECT seq FROM "
                "hl7_outbox WHERE kind = ? AND status = 'pending' ORDER BY seq DESC "
                "LIMIT -1 OFFSET ?)", (VITALS, max_pending)).rowcount
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return dropped

    def next_pending(self) -> Pending | None:
        """The next message to send: one already sent and not yet taken (it goes again before
        anything else, so messages arrive in order), else the oldest alarm, else the oldest
        vitals."""
        row = self.db.execute(
            "SELECT seq, control_id, kind, message FROM hl7_outbox WHERE status = 'pending' "
            "ORDER BY sends > 0 DESC, kind = ? DESC, seq LIMIT 1", (ALARM,)).fetchone()
        return None if row is None else Pending(*row)

    def mark_sent(self, seq: int, at: float) -> None:
        self.db.execute("UPDATE hl7_outbox SET sends = sends + 1, last_sent_at = ? "
                        "WHERE seq = ?", (at, seq))

    def mark_answered(self, seq: int, code: str, text: str, at: float,
                      max_rejects: int) -> str:
        """Record the receiver's answer, and return the message's status: AA (or CA) takes it
        out of the outbox ("acked"); AE leaves it to be sent again ("pending"), however often;
        AR (the receiver will not take this message) too, but only ``max_rejects`` times in
        all, after which it is set aside ("rejected") so that one message the receiver refuses
        does not hold back every message behind it."""
        sends = self.db.execute("SELECT sends FROM hl7_outbox WHERE seq = ?",
                                (seq,)).fetchone()[0]
        status = "acked" if code in ("AA", "CA") else \
            "rejected" if code in ("AR", "CR") and sends >= max_rejects else "pending"
        self.db.execute(
            "UPDATE hl7_outbox SET ack_code = ?, ack_text = ?, acked_at = ?, status = ? "
            "WHERE seq = ?", (code, text, at if status == "acked" else None, status, seq))
        return status

    def rows(self) -> list[dict]:
        return [dict(r) for r in self.db.execute(
            "SELECT seq, control_id, kind, source, bed, created_at, sends, last_sent_at, "
            "status, ack_code, ack_text, acked_at FROM hl7_outbox ORDER BY seq")]

    def counts(self) -> dict[str, int]:
        out = {"pending_alarms": 0, "pending_vitals": 0, "acked": 0, "dropped": 0,
               "rejected": 0}
        for kind, status, n in self.db.execute(
                "SELECT kind, status, COUNT(*) FROM hl7_outbox GROUP BY kind, status"):
            if status == "pending":
                out["pending_alarms" if kind == ALARM else "pending_vitals"] += n
            else:
                out[status] = out.get(status, 0) + n
        return out


class Hl7Outbound:
    """The interface's life: ``start()`` on a running loop, ``await stop()``."""

    def __init__(self, journal: AlarmJournal, clock: Clock, target: tuple[str, int], *,
                 readings: Callable[[], Iterable[NumericsMessage]],
                 patient_of: Callable[[int], str | None] = lambda bed: None,
                 interval: float = 60.0, ack_timeout: float = 5.0, retry: float = 1.0,
                 sync_every: float = 0.2, max_pending_vitals: int = 1000, max_rejects: int = 3,
                 max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        if not (0 < interval < math.inf and 0 < ack_timeout < math.inf
                and 0 <= retry < math.inf):
            raise ValueError(f"interval={interval}, ack_timeout={ack_timeout}, retry={retry}: "
                             "the interval and the timeout must be positive and finite, the "
                             "retry finite and not negative")
        self.outbox = Hl7Outbox(journal, clock, patient_of)
        self.clock = clock
        self.target = target
        self.readings = readings
        self.interval, self.ack_timeout, self.retry = interval, ack_timeout, retry
        self.sync_every = sync_every
        self.max_pending_vitals = max_pending_vitals
        self.max_rejects = max_rejects
        self.max_message = max_message
        self.counters: Counter[str] = Counter()
        self._last_sent: dict[int, tuple[int, int, int]] = {}  # bed -> its last reading sent
        self.connected = False
        # counted by reason, logged rate-limited; the station connects *to* the receiver
        self.problems = RejectLog(log, "HL7 outbound", source_word="to")
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._timers: list[PeriodicCallback] = []

    def start(self) -> None:
        self.sync()
        self._timers = [PeriodicCallback(self.sync, self.sync_every * 1000.0),
                        PeriodicCallback(self.send_vitals, self.interval * 1000.0)]
        for timer in self._timers:
            timer.start()
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        for timer in self._timers:
            timer.stop()
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def sync(self) -> None:
        """Take the alarm events the journal got since the last look into the outbox."""
        if self.outbox.sync_alarms():
            self._wake.set()

    def send_vitals(self) -> None:
        """Every bed's latest numerics into the outbox, as one ``ORU^R01`` each; a bed whose
        latest reading was sent already (its monitor went quiet) is not sent again, so the
        record never shows an old reading as a new one."""
        fresh = [r for r in self.readings()
                 if self._last_sent.get(r.bed) != (r.device_id, r.boot_id, r.seq)]
        for reading in fresh:
            self._last_sent[reading.bed] = (reading.device_id, reading.boot_id, reading.seq)
        dropped = self.outbox.add_vitals(fresh, self.max_pending_vitals)
        if dropped:
            self.counters["vitals_dropped"] += dropped
            self._problem("vitals_dropped", f"the receiver is behind: dropped {dropped} pending "
                          "ORU^R01 (alarms are never dropped)")
        self._wake.set()

    def _problem(self, reason: str, message: str) -> None:
        self.problems.reject(reason, message, format_target(self.target), self.clock.now())

    def stats(self) -> dict:
        return {"target": format_target(self.target), "connected": self.connected,
                **self.counters, **self.outbox.counts(),
                "problems": dict(self.problems.counts)}

    async def _pause(self, seconds: float) -> None:
        # asyncio.timeout rather than wait_for, which on Python 3.11 can lose a cancel that
        # comes as the wait ends (vitalsim/devices/link.py)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    async def _run(self) -> None:
        host, port = self.target
        while not self._stopping.is_set():
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                        self.ack_timeout)
            except (OSError, TimeoutError) as exc:
                self.counters["connect_failures"] += 1
                self._problem("connect", f"cannot connect ({exc or type(exc).__name__}); "
                              "retrying")
                await self._pause(self.retry)
                continue
            self.counters["connections"] += 1
            self.connected = True
            try:
                await self._converse(reader, writer)
            except (OSError, EOFError, RemoteProtocolError, TimeoutError) as exc:
                self.counters["connections_lost"] += 1
                reason = str(exc) or type(exc).__name__
                self._problem("connection_lost", f"the connection ended ({reason}); the "
                              "unanswered message will be sent again")
            finally:
                self.connected = False
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            await self._pause(self.retry)

    async def _converse(self, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        deframer = MllpDeframer(self.max_message)
        while not self._stopping.is_set():
            pending = self.outbox.next_pending()
            if pending is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self._wake.wait()
                continue
            writer.write(frame(pending.message.encode("utf-8")))
            self.outbox.mark_sent(pending.seq, self.clock.now())
            self.counters["sent"] += 1
            await writer.drain()
            others: list[str] = []  # the control ids answered instead, while waiting
            try:
                code, text = await asyncio.wait_for(
                    self._answer(reader, deframer, pending.control_id, others),
                    self.ack_timeout)
            except TimeoutError:
                self.counters["ack_timeouts"] += 1
                instead = f"answered {shown(others[-1], 40)} while waiting for " \
                    f"{pending.control_id}, and " if others else ""
                raise TimeoutError(f"{instead}no answer to {pending.control_id} within "
                                   f"{self.ack_timeout:g} s") from None
            if code not in ANSWER_CODES:
                # a code HL7 does not have: refused, and treated as an AR (retried at most
                # max_rejects times), under one fixed reason whatever the code was
                self.counters["bad_answer_code"] += 1
                self._problem("bad_answer_code", f"the receiver's answer to "
                              f"{pending.control_id} has MSA-1 {shown(code, 40)}, not one of "
                              f"{'/'.join(ANSWER_CODES)}; taken as AR")
                code, text = "AR", f"MSA-1 {shown(code, 40)} is not an answer code"
            else:
                self.counters[f"answered_{code}"] += 1
            text = text if len(text) <= MAX_SHOWN else shown(text)
            status = self.outbox.mark_answered(pending.seq, code, text, self.clock.now(),
                                               self.max_rejects)
            reason = text or "no reason given"
            if status == "rejected":
                self._problem("rejected", f"the receiver rejected {pending.kind} "
                              f"{pending.control_id} {self.max_rejects} times ({reason}); set "
                              "aside in the outbox, not sent again")
            elif status == "pending":
                self._problem(f"answered_{code}", f"the receiver answered {code} to "
                              f"{pending.control_id} ({reason}); sending it again")
                await self._pause(self.retry)

    async def _answer(self, reader: asyncio.StreamReader, deframer: MllpDeframer,
                      control_id: str, others: list[str]) -> tuple[str, str]:
        """Read until the answer to ``control_id`` comes; answers to other control ids (late,
        after a timeout, or a receiver's mistake) are counted, each one, even several in one
        read, added to ``others`` (the newest few) and passed over."""
        while True:
            data = await reader.read(65536)
            if not data:
                deframer.end_of_stream()
                raise EOFError("the receiver closed the connection")
            found: tuple[str, str] | None = None
            for raw in deframer.feed(data):
                try:
                    code, answered, text = hl7_messages.ack_of(hl7_messages.parse(raw))
                except (ValueError, KeyError, IndexError) as exc:
                    self.counters["bad_answers"] += 1
                    raise RemoteProtocolError(f"the receiver's answer is not an HL7 ACK: "
                                              f"{shown(str(exc))}") from None
                if answered == control_id and found is None:
                    found = code, text
                    continue
                self.counters["stale_answers"] += 1
                others[:] = [*others[-3:], answered]
                self._problem("stale_answer", f"the receiver answered {shown(answered, 40)} "
                              f"while waiting for {control_id}; passed over")
            if found is not None:
                return found
