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


def run_drill(design: str, *, alarms: int = 40, interval: float = 0.1, delay: float = 0.08,
              resets: tuple[float, ...] = (1.0, 2.5, 3.2), seed: int = 2) -> DrillResult:
    """Raise ``alarms`` alarms, about ``interval`` s apart (seeded), over a wire with a one-way
    ``delay``; reset the connection at each time in ``resets``. The device reconnects after its
    own back-off plus one round trip for the handshake."""
    if design not in DESIGNS:
        raise ValueError(f"design={design!r}; expected one of {DESIGNS}")
    rng = random.Random(seed)
    clock = VirtualClock()
    device_id, bed = 1001, 1
    sender = AlarmSender(device_id, bed)
    receiver = AlarmReceiver()
    journal: set[str] = set()
    raised: list[str] = []
    stored: list[str] = []
    sends = ignored = 0
    connection = 0  # bytes are tagged with the connection they travel on; a reset kills them
    order = itertools.count()
    queue: list[tuple[float, int, str, object]] = []

    def at(t: float, kind: str, payload: object = None) -> None:
        heapq.heappush(queue, (t, next(order), kind, payload))

    t = 0.0
    for n in range(1, alarms + 1):
        t += rng.uniform(0.2, 1.8) * interval
        at(t, "raise", n)
    for r in resets:
        at(r, "reset")
    at(0.0, "connect")

    while queue:
        now, _, kind, payload = heapq.heappop(queue)
        clock.set(now)
        if kind == "connect":
            connection += 1
            receiver = AlarmReceiver()
            waiting = len(sender.outbox)
            data = sender.connection_made(clock.now())
            sends += waiting
            if design == "tcp only":
                sender.outbox.clear()  # written to the socket: "TCP will deliver it"
            at(now + delay, "up", (connection, data))
        elif kind == "raise":
            alarm = AlarmMessage(f"{device_id}-{payload}", device_id, bed, "HR HIGH", "medium",
                                 "raised", 131.0, 130.0, now)
            raised.append(alarm.alarm_id)
            data = sender.send_alarm(alarm, clock.now())
            if data:
                sends += 1
                if design == "tcp only":
                    del sender.outbox[alarm.alarm_id]
                at(now + delay, "up", (connection, data))
        elif kind == "up":
            conn, data = payload  # type: ignore[misc]
            if conn != connection:
                continue  # it was on the wire when the connection was reset
            for event in receiver.receive_data(data, clock.now()):
                if not isinstance(event, AlarmMessage):
                    continue
                if design == "ack + journal" and event.alarm_id in journal:
                    ignored += 1
                else:
                    journal.add(event.alarm_id)
                    stored.append(event.alarm_id)
                receiver.confirm(event.alarm_id, clock.now())
            out = receiver.data_to_send(clock.now())
            if out:
                at(now + delay, "down", (connection, out))
        elif kind == "down":
            conn, data = payload  # type: ignore[misc]
            if conn == connection:
                sender.receive_data(data, clock.now())
        elif kind == "reset":
            if sender.state is not SenderState.CONNECTED:
                continue  # still reconnecting: there is no connection to reset
            connection += 1  # nothing sent on the old connection arrives any more
            sender.connection_lost(clock.now())
            at(now + sender.reconnect_delay() + 2 * delay, "connect")
    return DrillResult(design, tuple(raised), tuple(stored), sends, ignored, len(resets))


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
