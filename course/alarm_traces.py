"""The alarm channel's captures, generated: bedside monitors raising real alarms (the simulator's
patients and alarm limits), the real alarm-channel state machines on both sides
(``AlarmSender`` on the device, ``AlarmReceiver`` on the station), their frames from the real
codec, carried by :mod:`course.tcp_trace` over a wire that drops what a seed says.

- :func:`alarm_retransmissions`: two beds' alarm channels between two network namespaces with 20%
  of the packets towards the station dropped, seen on the station's side, as lab 02's recorder
  records them: TCP's retransmissions, duplicate ACKs, head-of-line blocking.
- :func:`alarm_restart`: one bed's alarm channel on loopback while the station stops for a few
  seconds and starts again: its FIN, the device's SYNs refused with RST while its back-off
  doubles, the second HELLO with the outbox re-sent behind it, and the station's ACKs.

Each is a function of a seed alone (virtual time, no sockets, no root).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from scapy.layers.inet import IP, TCP

from course.constants import FLAPPING_HR, RECORDED_ALARM_PORT
from course.tcp_trace import TcpEnd, Wire
from vitalsim.devices.monitor import BedsideMonitor
from vitalsim.protocol.alarm_channel import AlarmMessage, AlarmReceiver, AlarmSender

#: the recordings' ward runs at 10x: one simulated second every 100 ms
SPEED = 10.0
#: the namespaces of lab 02's recorder (course.netns_recorder)
BEDSIDE_IP, STATION_IP = "10.213.0.1", "10.213.0.2"
LOOPBACK = "127.0.0.1"
_TICK = 0.25  # how often both applications look at their timers (heartbeats)


class _Station:
    """The station's alarm listener: one AlarmReceiver per connection, each alarm journaled
    (a few ms) before its ACK; a heartbeat on a quiet connection. ``stop`` closes every
    connection and the port, as a station process that exits."""

    def __init__(self, wire: Wire, ip: str, rng: random.Random, *, mss: int) -> None:
        self.wire, self.ip, self.rng, self.mss = wire, ip, rng, mss
        self.journal: list[str] = []
        self.connections: list[tuple[TcpEnd, AlarmReceiver]] = []
        self.up = False

    def start(self, now: float) -> None:
        self.up = True
        self.wire.listen(self.ip, RECORDED_ALARM_PORT, self._accept, ack_delay=0.04, mss=self.mss)

    def stop(self, now: float) -> None:
        self.up = False
        self.wire.listen(self.ip, RECORDED_ALARM_PORT, None)
        for end, _ in self.connections:
            end.close(now)

    def _accept(self, end: TcpEnd, now: float) -> None:
        receiver = AlarmReceiver(heartbeat_interval=2.0, now=now)
        self.connections.append((end, receiver))
        end.on_data = lambda data, t: self._received(end, receiver, data, t)
        end.on_fin = lambda t: self.wire.at(t + self.rng.uniform(0.0005, 0.006), end.close)

    def _received(self, end: TcpEnd, receiver: AlarmReceiver, data: bytes, now: float) -> None:
        alarms = [e for e in receiver.receive_data(data, now) if isinstance(e, AlarmMessage)]

        def journaled(t: float) -> None:
            for alarm in alarms:
                if alarm.alarm_id not in self.journal:
                    self.journal.append(alarm.alarm_id)
                receiver.confirm(alarm.alarm_id, t)
            self._flush(end, receiver, t)
        delay = self.rng.uniform(0.004, 0.02) * (1 + len(alarms) // 4)
        self.wire.at(now + delay, journaled)

    def _flush(self, end: TcpEnd, receiver: AlarmReceiver, now: float) -> None:
        if self.up and not end.closed and end.established:
            out = receiver.data_to_send(now)
            if out:
                end.write(out, now)

    def tick(self, now: float) -> None:
        for end, receiver in self.connections:
            self._flush(end, receiver, now)


class _Device:
    """A bedside monitor's alarm link: connects, says HELLO (and re-sends its outbox), sends each
    alarm its monitor raises, heartbeats; on the station's FIN or a RST it waits the back-off
    its AlarmSender asks for and connects again from a new port."""

    def __init__(self, wire: Wire, monitor: BedsideMonitor, ip: str, station_ip: str,
                 rng: random.Random, *, mss: int, start: float) -> None:
        self.wire, self.monitor, self.ip, self.station_ip, self.rng = wire, monitor, ip, \
            station_ip, rng
        self.mss, self.start = mss, start
        self.sender = AlarmSender(monitor.device_id, monitor.bed)
        self.port = 32768 + rng.randrange(28000)
        self.end: TcpEnd | None = None
        self.connections = 0
        self.waiting_at_reconnect: list[int] = []  # outbox size at each connection
        self.raised = 0
        self.stopped = False

    def connect(self, now: float) -> None:
        if self.stopped:
            return
        self.port += self.rng.randint(2, 40)
        end = self.end = TcpEnd(self.wire, self.ip, self.port, self.station_ip,
                                RECORDED_ALARM_PORT, iss=self.rng.getrandbits(31),
                                ts_base=self.rng.getrandbits(31), rng=self.rng, mss=self.mss)
        end.on_established = self._connected
        end.on_data = lambda data, t: self.sender.receive_data(data, t)
        end.on_fin = lambda t: self._lost(end, t, close_after=self.rng.uniform(0.04, 1.2))
        end.on_reset = lambda t: self._lost(end, t, close_after=None)
        end.connect(now)

    def _connected(self, end: TcpEnd, now: float) -> None:
        def hello(t: float) -> None:  # the application learns of the connection, says HELLO
            if end is self.end and not end.closed:
                self.connections += 1
                self.waiting_at_reconnect.append(len(self.sender.outbox))
                end.write(self.sender.connection_made(t), t)
        self.wire.at(now + self.rng.uniform(0.004, 0.016), hello)

    def _lost(self, end: TcpEnd, now: float, close_after: float | None) -> None:
        if end is not self.end:
            return
        self.end = None
        self.sender.connection_lost(now)
        if close_after is None:  # refused: try again after the back-off
            self.wire.at(now + self.sender.reconnect_delay(), self.connect)
            return

        def close(t: float) -> None:  # the device notices the end of the stream, closes its side
            end.close(t)
            self.wire.at(t + self.sender.reconnect_delay(), self.connect)
        self.wire.at(now + close_after, close)

    def poll(self, now: float) -> None:
        if self.stopped:
            return
        _, alarms = self.monitor.poll((now - self.start) * SPEED, now)
        for alarm in alarms:
            self.raised += 1
            data = self.sender.send_alarm(alarm, now)
            if data and self.end is not None and self.end.established and not self.end.closed:
                self.end.write(data, now)

    def tick(self, now: float) -> None:
        if self.end is not None and self.end.established and not self.end.closed:
            data = self.sender.tick(now)
            if data:
                self.end.write(data, now)

    def stop(self, now: float) -> None:
        self.stopped = True
        if self.end is not None:
            self.end.close(now)


def _every(wire: Wire, start: float, end: float, period: float,
           action: Callable[[float], None], rng: random.Random) -> None:
    """``action`` about every ``period`` (an application's loop is never quite on time)."""
    steps = int((end - start) / period)
    for i in range(steps + 1):
        wire.at(start + i * period + rng.uniform(0.0, period / 5), action)


def _monitor(device_id: int, bed: int, seed: int, boot: float) -> BedsideMonitor:
    return BedsideMonitor(device_id, bed, "stable_adult", seed=seed, waves=False,
                          limits=FLAPPING_HR, boot_id=round(boot * 1_000_000))


def alarm_retransmissions(seed: int, start: float, *, loss: float = 0.2,
                          seconds: float = 8.0) -> list:
    """Two beds' alarm channels through a drop rule that loses ``loss`` of the packets towards
    the station, seen on the station's side. Of the variants of ``seed``, the first that shows
    what lab 02 asks about: a segment of the station's sent again (the bedside's ACK of it was
    lost), a segment held back behind a lost one, and every alarm journaled."""
    from course.tcp_evidence import head_of_line, retransmission_table

    for attempt in range(64):
        packets, devices, station = _retransmissions_once(seed, attempt, start, loss, seconds)
        table = retransmission_table(packets)
        raised = sum(d.raised for d in devices)
        if (all(d.connections == 1 and not d.sender.outbox for d in devices)
                and raised >= 4 and len(station.journal) == raised
                and (table["from"] == "station").any() and head_of_line(packets) is not None):
            return packets
    raise RuntimeError(f"no variant of seed {seed} shows every retransmission lab 02 asks about")


def _retransmissions_once(seed: int, attempt: int, start: float, loss: float,
                          seconds: float) -> tuple[list, list[_Device], _Station]:
    rng = random.Random(f"alarm-retransmissions|{seed}|{attempt}")
    fate = random.Random(f"alarm-retransmissions loss|{seed}|{attempt}")
    wire = Wire(delay=0.00005, ethernet=True, rng=rng,
                drop=lambda p: p[IP].dst == STATION_IP and fate.random() < loss)
    station = _Station(wire, STATION_IP, rng, mss=1448)
    station.start(start)
    devices = []
    boot = start - rng.uniform(20.0, 600.0)  # the ward was switched on a while ago
    for bed in (1, 2):
        monitor = _monitor(1000 + bed, bed, seed * 10 + bed + attempt * 7919, boot)
        device = _Device(wire, monitor, BEDSIDE_IP, STATION_IP, rng, mss=1448, start=start)
        wire.at(start + (bed - 1) * rng.uniform(0.01, 0.03), device.connect)
        devices.append(device)
    for device in devices:
        _every(wire, start, start + seconds, 1 / SPEED, device.poll, rng)
        _every(wire, start + 0.05, start + seconds + 2, _TICK, device.tick, rng)
    _every(wire, start + 0.1, start + seconds + 2, _TICK, station.tick, rng)
    for device in devices:
        wire.at(start + seconds + rng.uniform(0.0, 0.05), device.stop)
    wire.run(start + seconds + 3.0)
    return wire.packets, devices, station


def alarm_restart(seed: int, start: float) -> list:
    """One bed's alarm channel on loopback; the station stops after about 3 s and is back a few
    seconds later. Of the variants of ``seed``, the first in which at least two of the device's
    SYNs were refused and at least two alarms waited in its outbox."""
    for attempt in range(64):
        packets, device = _restart_once(seed, attempt, start)
        resets = sum(1 for p in packets if p[TCP].flags.R)
        if device.connections == 2 and resets >= 2 and device.waiting_at_reconnect[1] >= 2 \
                and not device.sender.outbox:
            return packets
    raise RuntimeError(f"no variant of seed {seed} shows a restart with alarms waiting")


def _restart_once(seed: int, attempt: int, start: float) -> tuple[list, _Device]:
    rng = random.Random(f"alarm-restart|{seed}|{attempt}")
    wire = Wire(delay=0.00003, ethernet=True, rng=rng)
    station = _Station(wire, LOOPBACK, rng, mss=65483)
    station.start(start)
    monitor = _monitor(1001, 1, seed * 10 + 1 + attempt * 7919,
                       start - rng.uniform(20.0, 600.0))
    device = _Device(wire, monitor, LOOPBACK, LOOPBACK, rng, mss=65483, start=start)
    wire.at(start, device.connect)
    stop = start + rng.uniform(2.5, 3.5)
    back = stop + rng.uniform(2.5, 4.5)
    wire.at(stop, station.stop)
    wire.at(back, station.start)
    end = back + 10.0
    _every(wire, start, end, 1 / SPEED, device.poll, rng)
    _every(wire, start + 0.05, end, _TICK, device.tick, rng)
    _every(wire, start + 0.1, end, _TICK, station.tick, rng)
    now = back
    while now < end:  # until the outbox was re-sent and ACKed, then the device stops
        now += 0.25
        wire.run(now)
        if device.connections >= 2 and not device.sender.outbox:
            break
    finish = now + rng.uniform(0.2, 0.5)
    wire.at(finish, device.stop)
    wire.run(finish + 1.0)
    return wire.packets, device
