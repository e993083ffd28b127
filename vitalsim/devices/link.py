"""Asyncio glue that puts one :class:`BedsideMonitor` on the network.

Telemetry goes out by UDP, fire and forget. Alarms go over a TCP connection driven by the sans-I/O
:class:`~vitalsim.protocol.alarm_channel.AlarmSender`: this class only moves its bytes, feeds it the
time, and reconnects after the delay it asks for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl

from ..clock import Clock, WallClock
from ..protocol.alarm_channel import AlarmSender, ProtocolError
from .monitor import BedsideMonitor

log = logging.getLogger("vitalsim.device")


class DeviceLink:
    """Runs one monitor against a station at ``host`` (UDP ``udp_port``, TCP ``tcp_port``).

    Simulated time is ``(clock.now() - started) * speed``: at ``speed=60`` a minute of the scenario
    passes every second. ``tick`` is how often, in real seconds, the monitor is polled.
    """

    def __init__(self, monitor: BedsideMonitor, host: str, udp_port: int, tcp_port: int, *,
                 clock: Clock | None = None, speed: float = 1.0, tick: float = 0.05,
                 sender: AlarmSender | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.monitor = monitor
        self.tls = tls  # TLS on the alarm channel; the sender's bytes are the same inside it
        self.host, self.udp_port, self.tcp_port = host, udp_port, tcp_port
        self.clock = clock or WallClock()
        self.speed = speed
        self.tick = tick
        self.sender = sender or AlarmSender(monitor.device_id, monitor.bed)
        self.datagrams_sent = 0
        self.alarms_raised = 0
        self.connections = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._started = 0.0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=(self.host, self.udp_port)
        )
        self._started = self.clock.now()
        self._tasks = [
            asyncio.create_task(self._telemetry_loop(), name=f"bed{self.monitor.bed}-telemetry"),
            asyncio.create_task(self._alarm_loop(), name=f"bed{self.monitor.bed}-alarms"),
        ]

    async def stop_telemetry(self) -> None:
        """Stop sampling and sending (no new alarms either); the alarm channel stays up so
        that whatever is still in the outbox can be delivered."""
        for task in self._tasks[:1]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        self._close_writer()

    @property
    def started_at(self) -> float:
        """The clock time at which simulated time was 0: a simulated time ``s`` is due at
        ``started_at + s / speed`` (how a lab turns an alarm's onset into wall time)."""
        return self._started

    def sim_time(self) -> float:
        return (self.clock.now() - self._started) * self.speed

    async def _telemetry_loop(self) -> None:
        while True:
            now = self.clock.now()
            datagrams, events = self.monitor.poll(self.sim_time(), now)
            if self._udp is not None:
                for data in datagrams:
                    self._udp.sendto(data)
                self.datagrams_sent += len(datagrams)
            for event in events:
                self.alarms_raised += 1
                data = self.sender.send_alarm(event, now)
                if data and self._writer is not None:
                    self._writer.write(data)
            await asyncio.sleep(self.tick)

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def _alarm_loop(self) -> None:
        while True:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.tcp_port,
                                                               ssl=self.tls)
            except OSError as exc:
                self.sender.connection_lost(self.clock.now())
                delay = self.sender.reconnect_delay()
                log.debug("bed %s: alarm channel connect failed (%s); retry in %.2fs",
                          self.monitor.bed, exc, delay)
                await asyncio.sleep(delay)
                continue
            self.connections += 1
            self._writer = writer
            try:
                writer.write(self.sender.connection_made(self.clock.now()))
                await self._converse(reader, writer)
            except (OSError, ProtocolError) as exc:
                log.info("bed %s: alarm channel lost: %s", self.monitor.bed, exc)
            finally:
                self._close_writer()
                self.sender.connection_lost(self.clock.now())
            await asyncio.sleep(self.sender.reconnect_delay())

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11, a wait_for whose read completes
            # as the task is cancelled returns the data and loses the cancel, and stop() then
            # waits for this loop for ever
            try:
                async with asyncio.timeout(0.5):
                    data = await reader.read(65536)
            except TimeoutError:
                data = None
            now = self.clock.now()
            if data == b"":
                raise ConnectionResetError("station closed the alarm connection")
            if data:
                self.sender.receive_data(data, now)
            if self.sender.is_dead(now):
                raise TimeoutError("no heartbeat or ACK from the station in time")
            out = self.sender.tick(now)
            if out:
                writer.write(out)
            await writer.drain()
