"""The load generator: many beds' real telemetry from one cheap process, and their alarms.

The patient model makes about a thousand bed-seconds per CPU-second, too slow to feed a thousand
live beds. So the generator runs a few real :class:`~vitalsim.devices.monitor.BedsideMonitor`\\ s
for a few simulated seconds once, keeps the datagrams they encoded (the *pool*), and replays them
for every bed, rewriting in place only what differs from bed to bed and send to send: bed,
device id, sequence number, send time (one ``struct.pack_into`` on the header) and, for a
waveform chunk, its first sample index. Each bed starts at its own phase, so the load is smooth.

Alarms go over TCP, one connection per bed as real monitors do, each driven by the sans-I/O
:class:`~vitalsim.protocol.alarm_channel.AlarmSender` (HELLO, outbox, ACKs, heartbeats).

Two workloads: ``full`` (numerics at 1 Hz and every waveform channel, what a ward sends) and
``numerics`` (numerics only, one datagram per bed a second, evenly paced: what a latest-value
broadcast server is usually measured with, so that the figures compare).
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import time
from array import array
from dataclasses import dataclass
from multiprocessing.connection import Connection

import numpy as np

from vitalsim.devices.monitor import BedsideMonitor
from vitalsim.devices.ward import assign_scenarios
from vitalsim.protocol.alarm_channel import AlarmMessage, AlarmSender
from vitalsim.protocol.telemetry import HEADER, TYPE_WAVE, WAVE_HEAD
from vitalsim.scenarios import scenario_names

from .procs import receive

# bed u16, device_id u32, seq u32, sent_at_us u64: contiguous in the header, from byte 6
_IDENTITY = struct.Struct("!HIIQ")
_IDENTITY_AT = 6
_FIRST_INDEX = struct.Struct("!I")
_FIRST_INDEX_AT = HEADER.size + 4  # channel u8, reserved u8, rate u16, then first_index
assert WAVE_HEAD.format.lstrip("!").startswith("BBHI")


@dataclass
class Pool:
    """One replay cycle of real datagrams from a few monitors.

    ``events[t]`` lists, for template monitor ``t``, (offset in the cycle in seconds, index into
    ``data``). ``step[i]`` is how far a wave chunk's first index moves per cycle (0: numerics).
    """

    cycle: int
    data: list[bytearray]
    first: list[int]
    step: list[int]
    events: list[list[tuple[float, int]]]

    @property
    def per_bed_second(self) -> float:
        return sum(len(e) for e in self.events) / len(self.events) / self.cycle

    @property
    def bytes_per_bed_second(self) -> float:
        """UDP payload bytes a bed sends per second: the telemetry's share of the wire, which
        grows with each channel a bed carries (an arterial line and a capnogram add two waves)."""
        sent = sum(len(self.data[item]) for mine in self.events for _, item in mine)
        return sent / len(self.events) / self.cycle


def numerics_only(pool: Pool) -> Pool:
    """The same pool without its waveform chunks: numerics at 1 Hz per bed."""
    events = [[(at, item) for at, item in mine if not pool.step[item]] for mine in pool.events]
    return Pool(pool.cycle, pool.data, pool.first, pool.step, events)


def build_pool(templates: int | None = None, cycle: int = 8, seed: int = 1,
               tick: float = 0.01) -> Pool:
    """Run ``templates`` monitors (the ward's scenario mix; by default one per scenario, so the
    beds with an arterial line and a capnogram are in it) for ``cycle`` simulated seconds.

    Polled every ``tick`` simulated seconds like a device link, each sends numerics at 1 Hz and
    each waveform in chunks of a quarter second or a little more. A last poll at the end of the
    cycle flushes every channel, so that chunks join up with the next cycle's without a gap."""
    data: list[bytearray] = []
    first: list[int] = []
    step: list[int] = []
    events: list[list[tuple[float, int]]] = []
    templates = len(scenario_names()) if templates is None else templates
    for t, scenario in enumerate(assign_scenarios("mix", templates)):
        monitor = BedsideMonitor(1000 + t, t + 1, scenario, seed=seed * 1000 + t)
        mine: list[tuple[float, int]] = []
        n_polls = round(cycle / tick)
        for k in range(n_polls + 1):
            sim_t = k * tick
            last = k == n_polls
            if last:
                monitor.wave_chunk = 0.0  # flush what is left of every channel
            datagrams, _ = monitor.poll(sim_t, 0.0)
            for raw in datagrams:
                wave = raw[3] == TYPE_WAVE
                if last and not wave:
                    continue  # the numerics of second `cycle` are the next cycle's second 0
                offset = min(sim_t, cycle - 1e-6)
                mine.append((offset, len(data)))
                data.append(bytearray(raw))
                if wave:
                    (rate,) = struct.unpack_from("!H", raw, HEADER.size + 2)
                    (index,) = _FIRST_INDEX.unpack_from(raw, _FIRST_INDEX_AT)
                    first.append(index)
                    step.append(rate * cycle)
                else:
                    first.append(0)
                    step.append(0)
        events.append(mine)
    return Pool(cycle, data, first, step, events)


@dataclass
class Schedule:
    """Every bed's datagrams of one cycle, merged and sorted by time (plain lists: fast to
    index from Python)."""

    time: list[float]
    bed: list[int]
    item: list[int]
    wrap: list[int]  # 1 when the event belongs to the bed's previous cycle

    @classmethod
    def of(cls, pool: Pool, beds: int) -> Schedule:
        times, bed_of, items, wraps = [], [], [], []
        golden = 0.6180339887498949
        for bed in range(1, beds + 1):
            phase = (bed * golden % 1.0) * pool.cycle
            for offset, item in pool.events[(bed - 1) % len(pool.events)]:
                at = phase + offset
                times.append(at % pool.cycle)
                wraps.append(int(at // pool.cycle))
                bed_of.append(bed)
                items.append(item)
        order = np.argsort(np.asarray(times), kind="stable")
        return cls([times[i] for i in order], [bed_of[i] for i in order],
                   [items[i] for i in order], [wraps[i] for i in order])


class Sender:
    """Replays a schedule on a connected UDP socket, paced or as fast as it can."""

    def __init__(self, pool: Pool, beds: int, host: str, port: int) -> None:
        self.pool = pool
        self.beds = beds
        self.schedule = Schedule.of(pool, beds)
        self.seq = [0] * (beds + 1)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect((host, port))
        self.sock.setblocking(False)
        self.sent = 0
        self.send_errors = 0  # the sender's own buffer was full: not offered
        self.numerics_sent_at = array("d")  # send time of every numerics datagram sent

    def close(self) -> None:
        self.sock.close()

    def _send(self, i: int, cycle: int) -> None:
        s = self.schedule
        bed = s.bed[i]
        item = s.item[i]
        data = self.pool.data[item]
        step = self.pool.step[item]
        if step:
            # every bed sends from the start: its cycle 0 began (phase) seconds before ours
            own_cycle = cycle + 1 - s.wrap[i]
            _FIRST_INDEX.pack_into(data, _FIRST_INDEX_AT,
                                   (self.pool.first[item] + own_cycle * step) & 0xFFFFFFFF)
        seq = self.seq[bed]
        self.seq[bed] = seq + 1
        now = time.time()
        _IDENTITY.pack_into(data, _IDENTITY_AT, bed, 1000 + bed, seq & 0xFFFFFFFF,
                            int(now * 1_000_000))
        try:
            self.sock.send(data)
        except BlockingIOError:
            self.send_errors += 1
            return
        self.sent += 1
        if not step:
            self.numerics_sent_at.append(now)

    def numerics_between(self, since: float, until: float) -> int:
        """Numerics datagrams sent with a send time in [since, until]: the readings each
        dashboard that wants every bed is owed in that window."""
        return sum(1 for t in self.numerics_sent_at if since <= t <= until)

    async def run(self, seconds: float, *, flood: bool = False) -> float:
        """Send for ``seconds``: on schedule, or (``flood``) back to back. Returns the time
        it took."""
        n = len(self.schedule.time)
        if n == 0:
            return 0.0
        start = time.monotonic()
        i = cycle = 0
        if flood:
            while time.monotonic() - start < seconds:
                for _ in range(256):
                    self._send(i, cycle)
                    i += 1
                    if i == n:
                        i, cycle = 0, cycle + 1
                await asyncio.sleep(0)  # let the alarm links breathe
            return time.monotonic() - start
        period = self.pool.cycle
        times = self.schedule.time
        while True:
            elapsed = time.monotonic() - start
            if elapsed >= seconds:
                return elapsed
            due_cycle, due = divmod(elapsed, period)
            while cycle < due_cycle or (cycle == due_cycle and times[i] <= due):
                self._send(i, cycle)
                i += 1
                if i == n:
                    i, cycle = 0, cycle + 1
            await asyncio.sleep(0.002)


class AlarmLink(asyncio.Protocol):
    """One bed's alarm connection: bytes in and out of its :class:`AlarmSender`."""

    def __init__(self, sender: AlarmSender) -> None:
        self.sender = sender
        self.transport: asyncio.Transport | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.sender.connection_made(time.time()))

    def data_received(self, data: bytes) -> None:
        self.sender.receive_data(data, time.time())

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.transport = None
        self.sender.connection_lost(time.time())

    def write(self, data: bytes) -> None:
        if data and self.transport is not None:
            self.transport.write(data)


class Alarms:
    """Every bed's alarm link, and alarms raised and cleared on random beds at a steady rate."""

    CONDITIONS = (("HR HIGH", 140.0, 120.0), ("SPO2 LOW", 86.0, 90.0), ("RR HIGH", 32.0, 25.0))

    def __init__(self, beds: int, seed: int) -> None:
        self.links = [AlarmLink(AlarmSender(1000 + bed, bed)) for bed in range(1, beds + 1)]
        self.rng = random.Random(seed)
        self.active: dict[int, tuple[str, float, float]] = {}
        self.sent = 0
        self._heartbeats: asyncio.Task[None] | None = None

    async def connect(self, host: str, port: int, batch: int = 64) -> None:
        """Connect in batches, so the station's accept backlog never overflows. Heartbeats
        start first: connecting thousands of links takes longer than the station waits to hear
        from the first ones (alarm_dead_after)."""
        loop = asyncio.get_running_loop()
        self._heartbeats = asyncio.create_task(self._beat())
        for start in range(0, len(self.links), batch):
            await asyncio.gather(*(
                loop.create_connection(lambda link=link: link, host, port)
                for link in self.links[start:start + batch]))

    async def _beat(self) -> None:
        while True:
            now = time.time()
            for link in self.links:
                link.write(link.sender.tick(now))
            await asyncio.sleep(0.5)

    def raise_one(self) -> None:
        """Raise an alarm on a random bed, or clear the one it has."""
        link = self.links[self.rng.randrange(len(self.links))]
        sender = link.sender
        now = time.time()
        if sender.bed in self.active:
            condition, value, limit = self.active.pop(sender.bed)
            state = "cleared"
        else:
            condition, value, limit = self.rng.choice(self.CONDITIONS)
            self.active[sender.bed] = (condition, value, limit)
            state = "raised"
        self.sent += 1
        alarm = AlarmMessage(f"{sender.device_id}-{self.sent}", sender.device_id, sender.bed,
                             condition, self.rng.choice(("high", "medium", "low")), state,
                             value, limit, now)
        link.write(sender.send_alarm(alarm, now))

    async def run(self, seconds: float, rate: float) -> None:
        if rate <= 0 or not self.links:
            return
        start = time.monotonic()
        n = 0
        while (elapsed := time.monotonic() - start) < seconds:
            while n <= elapsed * rate:
                self.raise_one()
                n += 1
            await asyncio.sleep(min(1 / rate, 0.05))

    def counts(self) -> dict[str, int]:
        pending = sum(len(link.sender.outbox) for link in self.links)
        return {"alarms_sent": self.sent,
                "alarms_acked": sum(lnk.sender.acked for lnk in self.links),
                "alarms_pending": pending,
                "alarm_links_lost": sum(lnk.lost for lnk in self.links)}

    def close(self) -> None:
        if self._heartbeats is not None:
            self._heartbeats.cancel()
        for link in self.links:
            if link.transport is not None:
                link.transport.close()


def generator_main(conn: Connection) -> None:
    """Child process: answers ``init``, ``run``, ``drain`` and ``stop`` from the parent."""
    asyncio.run(_generator(conn))


async def _generator(conn: Connection) -> None:
    sender: Sender | None = None
    alarms: Alarms | None = None
    try:
        while True:
            command, args = await receive(conn)
            try:
                if command == "init":
                    pool = build_pool(seed=args.get("seed", 1))
                    if args.get("workload", "full") == "numerics":
                        pool = numerics_only(pool)
                    sender = Sender(pool, args["beds"], args["host"], args["udp_port"])
                    if args.get("tcp_port"):
                        alarms = Alarms(args["beds"], args.get("seed", 1))
                        await alarms.connect(args["host"], args["tcp_port"])
                    conn.send({"per_bed_second": pool.per_bed_second,
                               "bytes_per_bed_second": pool.bytes_per_bed_second,
                               "links": len(alarms.links) if alarms else 0})
                elif command == "run":
                    assert sender is not None
                    sent_before = sender.sent
                    jobs = [sender.run(args["seconds"], flood=args.get("flood", False))]
                    if alarms is not None:
                        jobs.append(alarms.run(args["seconds"], args.get("alarm_rate", 0.0)))
                    elapsed, *_ = await asyncio.gather(*jobs)
                    conn.send({"sent": sender.sent - sent_before, "seconds": elapsed,
                               "send_errors": sender.send_errors})
                elif command == "numerics":
                    assert sender is not None
                    conn.send({"numerics_sent": sender.numerics_between(args["since"],
                                                                        args["until"])})
                elif command == "drain":
                    deadline = time.monotonic() + args.get("timeout_s", 5.0)
                    while alarms is not None and alarms.counts()["alarms_pending"] \
                            and time.monotonic() < deadline:
                        await asyncio.sleep(0.02)
                    conn.send(alarms.counts() if alarms else
                              {"alarms_sent": 0, "alarms_acked": 0, "alarms_pending": 0,
                               "alarm_links_lost": 0})
                elif command == "stop":
                    conn.send({})
                    return
            except Exception as exc:  # reported to the parent, which stops the run
                conn.send({"error": f"{command}: {exc!r}"})
                return
    finally:
        if alarms is not None:
            alarms.close()
        if sender is not None:
            sender.close()
