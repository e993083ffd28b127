"""Lab 02's drill: one device, one station, and connection resets, on a virtual clock.

The same alarms cross the same resets under three designs, so that a learner sees what each layer
of the alarm channel buys:

- ``"tcp only"``: the device forgets an alarm once its bytes are written to the socket, trusting
  TCP. Whatever was in flight when the connection was reset is lost, and nobody knows which.
- ``"ack, no dedup"``: the device keeps each alarm in its outbox until the station's
  application-level ACK, and re-sends the outbox after reconnecting; the station stores every
  ALARM frame it reads. Nothing is lost, but an alarm whose ACK died in the reset is stored twice.
- ``"ack + journal"``: the course's design. The station's journal is keyed by alarm id, so a
  re-sent alarm is recognised and only ACKed again: exactly once.

It drives the real sans-I/O state machines (:class:`~vitalsim.protocol.AlarmSender`,
:class:`~vitalsim.protocol.AlarmReceiver`); only the wire is simulated, as a one-way delay, and a
reset throws away every byte still on it in either direction. Everything is seeded and runs on a
:class:`~vitalsim.clock.VirtualClock`, so the outcome is the same on every machine.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter
from dataclasses import dataclass

import pandas as pd

from vitalsim.clock import VirtualClock
from vitalsim.protocol.alarm_channel import AlarmMessage, AlarmReceiver, AlarmSender, SenderState

DESIGNS = ("tcp only", "ack, no dedup", "ack + journal")


@dataclass(frozen=True)
class DrillResult:
    """What the device raised and what the station's application stored, in order."""

    design: str
    raised: tuple[str, ...]
    stored: tuple[str, ...]
    sends: int  # ALARM frames the device wrote, first sendings and re-sends
    ignored: int  # re-sent alarms the station recognised and did not store again
    resets: int

    @property
    def resent(self) -> int:
        return self.sends - len(self.raised)

    @property
    def missing(self) -> list[str]:
        """Alarm ids raised but never stored, sorted."""
        return sorted(set(self.raised) - set(self.stored))

    @property
    def duplicated(self) -> list[str]:
        """Alarm ids stored more than once, sorted."""
        return sorted(i for i, n in Counter(self.stored).items() if n > 1)

    def raised_frame(self) -> pd.DataFrame:
        """One row per alarm the device raised: ``alarm_id``."""
        return pd.DataFrame({"alarm_id": list(self.raised)})

    def stored_frame(self) -> pd.DataFrame:
        """One row per alarm the station stored (a re-stored one appears twice): ``alarm_id``."""
        return pd.DataFrame({"alarm_id": list(self.stored)})


class _Drill:
    """One drill's state: a device and a station on virtual time, joined by a wire with a one-way
    ``delay``, driven by a queue of timed events. Each event kind has its own method:

    - ``connect``: the device (re)connects and re-sends its outbox (or, "tcp only", forgets it);
    - ``raise``: the device raises an alarm and sends it;
    - ``up`` / ``down``: bytes arrive at the station / the device, unless their connection was
      reset while they were on the wire;
    - ``reset``: the connection is cut; the device reconnects after its back-off plus one round
      trip for the handshake.
    """

    device_id, bed = 1001, 1

    def __init__(self, design: str, delay: float) -> None:
        self.design, self.delay = design, delay
        self.clock = VirtualClock()
        self.sender = AlarmSender(self.device_id, self.bed)
        self.receiver = AlarmReceiver()
        self.journal: set[str] = set()
        self.raised: list[str] = []
        self.stored: list[str] = []
        self.sends = self.ignored = 0
        self.connection = 0  # bytes are tagged with the connection they travel on
        self._order = itertools.count()
        self._queue: list[tuple[float, int, str, object]] = []

    def at(self, t: float, kind: str, payload: object = None) -> None:
        heapq.heappush(self._queue, (t, next(self._order), kind, payload))

    def run(self) -> None:
        while self._queue:
            now, _, kind, payload = heapq.heappop(self._queue)
            self.clock.set(now)
            getattr(self, f"on_{kind}")(now, payload)

    def on_connect(self, now: float, _: object) -> None:
        self.connection += 1
        self.receiver = AlarmReceiver()
        waiting = len(self.sender.outbox)
        data = self.sender.connection_made(now)
        self.sends += waiting
        if self.design == "tcp only":
            self.sender.outbox.clear()  # written to the socket: "TCP will deliver it"
        self.at(now + self.delay, "up", (self.connection, data))

    def on_raise(self, now: float, n: object) -> None:
        alarm = AlarmMessage(f"{self.device_id}-{n}", self.device_id, self.bed, "HR HIGH",
                             "medium", "raised", 131.0, 130.0, now)
        self.raised.append(alarm.alarm_id)
        data = self.sender.send_alarm(alarm, now)
        if data:
            self.sends += 1
            if self.design == "tcp only":
                del self.sender.outbox[alarm.alarm_id]
            self.at(now + self.delay, "up", (self.connection, data))

    def on_up(self, now: float, payload: object) -> None:
        conn, data = payload  # type: ignore[misc]
        if conn != self.connection:
            return  # it was on the wire when the connection was reset
        for event in self.receiver.receive_data(data, now):
            if isinstance(event, AlarmMessage):
                self.store(event.alarm_id)
                self.receiver.confirm(event.alarm_id, now)
        out = self.receiver.data_to_send(now)
        if out:
            self.at(now + self.delay, "down", (self.connection, out))

    def store(self, alarm_id: str) -> None:
        """The station's side: only "ack + journal" checks its journal for a re-sent alarm."""
        if self.design == "ack + journal" and alarm_id in self.journal:
            self.ignored += 1
        else:
            self.journal.add(alarm_id)
            self.stored.append(alarm_id)

    def on_down(self, now: float, payload: object) -> None:
        conn, data = payload  # type: ignore[misc]
        if conn == self.connection:
            self.sender.receive_data(data, now)

    def on_reset(self, now: float, _: object) -> None:
        if self.sender.state is not SenderState.CONNECTED:
            return  # still reconnecting: there is no connection to reset
        self.connection += 1  # nothing sent on the old connection arrives any more
        self.sender.connection_lost(now)
        self.at(now + self.sender.reconnect_delay() + 2 * self.delay, "connect")


def run_drill(design: str, *, alarms: int = 40, interval: float = 0.1, delay: float = 0.08,
              resets: tuple[float, ...] = (1.0, 2.5, 3.2), seed: int = 2) -> DrillResult:
    """Raise ``alarms`` alarms, about ``interval`` s apart (seeded), over a wire with a one-way
    ``delay``; reset the connection at each time in ``resets``. The device reconnects after its
    own back-off plus one round trip for the handshake."""
    if design not in DESIGNS:
        raise ValueError(f"design={design!r}; expected one of {DESIGNS}")
    rng = random.Random(seed)
    drill = _Drill(design, delay)
    t = 0.0
    for n in range(1, alarms + 1):
        t += rng.uniform(0.2, 1.8) * interval
        drill.at(t, "raise", n)
    for r in resets:
        drill.at(r, "reset")
    drill.at(0.0, "connect")
    drill.run()
    return DrillResult(design, tuple(drill.raised), tuple(drill.stored), drill.sends,
                       drill.ignored, len(resets))


def compare_designs(**drill: object) -> pd.DataFrame:
    """The three designs through the same drill, one row each: what was raised, stored, lost,
    stored twice, and re-sent."""
    rows = []
    for design in DESIGNS:
        r = run_drill(design, **drill)  # type: ignore[arg-type]
        rows.append({"design": design, "raised": len(r.raised), "stored rows": len(r.stored),
                     "missing": len(r.missing), "stored twice": len(r.duplicated),
                     "re-sent": r.resent, "re-sends ignored": r.ignored})
    return pd.DataFrame(rows).set_index("design")
