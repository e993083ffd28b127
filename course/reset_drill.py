"""What lab 02 (TCP and reliable alarms) starts: the whole system with a TCP impairment proxy on
the alarm channel, and a recording of that channel under kernel loss.

Both live here, beside :mod:`server.system`, because they start the station; the notebook only
calls them and reads what they give back.

- :class:`ResetDrill`: a ward whose alarm limit flaps (alarms raise and clear every few
  seconds) sends through a :class:`~vitalsim.impair.TcpImpairmentProxy`; the lab resets the
  connections while alarms are unacknowledged and then audits the SQLite journal against the
  alarm ids each device raised. Every wait has a deadline.
- :func:`alarm_channel_capture`: with root and nftables, records the alarm channel between two
  network namespaces with 20% of packets dropped by the kernel, in a few seconds (through
  :func:`course.netns_recorder.record_alarm_channel`, the recorder the capture generator
  uses too); without them, returns the recorded
  ``course/recordings/alarm-retransmissions.pcap``, which shows the same things.
"""

from __future__ import annotations

import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pandas as pd

from course.constants import FLAPPING_HR, RECORDINGS
from course.netns_recorder import AlarmCapture, record_alarm_channel
from course.waiting import wait_until
from server.alarm_source import DEVICE_ONLY_SQL
from server.config import StationConfig
from server.system import System, SystemConfig
from vitalsim.alarms import Limit
from vitalsim.devices import Ward, WardConfig
from vitalsim.devices.link import DeviceLink
from vitalsim.impair import TcpSettings
from vitalsim.impair.netns import unavailable_reason
from vitalsim.protocol import AlarmMessage, AlarmSender

RECORDED_CAPTURE = RECORDINGS / "alarm-retransmissions.pcap"

DEVICE_ALARMS_SQL = ("SELECT alarm_id, bed, condition, state, received_at FROM alarm_events "
                     f"WHERE {DEVICE_ONLY_SQL} ORDER BY received_at")


class RecordingSender(AlarmSender):
    """An :class:`AlarmSender` that also remembers every alarm id it was given, in order: the
    device's own account of what it raised, to audit the station's journal against."""

    def __init__(self, device_id: int, bed: int, **kwargs: float) -> None:
        super().__init__(device_id, bed, **kwargs)
        self.raised: list[str] = []

    def send_alarm(self, alarm: AlarmMessage, now: float) -> bytes:
        self.raised.append(alarm.alarm_id)
        return super().send_alarm(alarm, now)


class ResetDrill:
    """The station, a TCP impairment proxy and a ward of ``beds`` whose alarms flap.

    ``latency`` (seconds, each way, in the proxy) keeps each alarm unacknowledged for a round
    trip, so that a reset finds alarms on the wire in both directions: some not yet stored,
    some stored whose ACK is still travelling. The journal is an SQLite file in a temporary
    folder, removed by :meth:`stop`.
    """

    def __init__(self, *, beds: int = 4, seed: int = 2, speed: float = 30.0,
                 latency: float = 0.2, limits: tuple[Limit, ...] = FLAPPING_HR) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="vitalsim-lab02-")
        self.journal_path = Path(self._tmp.name) / "alarms.sqlite3"
        self.ward_config = WardConfig(beds=beds, scenario="stable_adult", seed=seed, speed=speed,
                                      waves=False, limits=limits)
        self.system = System(SystemConfig(
            StationConfig(http_port=0, udp_port=0, tcp_port=0, journal_path=self.journal_path),
            WardConfig(beds=0),  # the station and the proxy; the ward is ours (see start)
            tcp_impairment=TcpSettings(latency=latency), impairment_seed=seed))
        self.senders: list[RecordingSender] = []
        self.resets = 0
        self._resent_before = 0  # alarms raised before a device's first connection

    async def start(self) -> ResetDrill:
        system = self.system
        await system.start()
        try:
            assert system.tcp_proxy is not None
            ward = Ward(self.ward_config, system.config.station.host, system.station.udp_port,
                        system.tcp_proxy.port)
            for link in ward.links:  # before start: every alarm goes through a recording sender
                link.sender = RecordingSender(link.monitor.device_id, link.monitor.bed)
                system.station.provision(link.monitor.device_id, link.monitor.bed)
                system.station.patients[link.monitor.bed] = link.monitor.model.scenario.title
            self.senders = [link.sender for link in ward.links]  # type: ignore[misc]
            system.ward = ward  # System.stop stops it
            await ward.start()
            await wait_until(lambda: system.tcp_proxy.counters["open"] == len(ward.links),
                             what="every device's alarm connection", timeout=10)
        except BaseException:
            await self.stop()
            raise
        return self

    @property
    def links(self) -> list[DeviceLink]:
        return self.system.ward.links if self.system.ward is not None else []

    def unacknowledged(self) -> int:
        """Alarms waiting in the devices' outboxes for the station's ACK."""
        return sum(len(s.outbox) for s in self.senders)

    def journaled(self) -> int:
        journal = self.system.station.journal
        return journal.count("device") if journal is not None else 0

    async def wait_for_alarms(self, count: int, timeout: float = 10.0) -> None:
        await wait_until(lambda: self.journaled() >= count, timeout=timeout,
                         what=f"{count} alarms in the journal")

    def in_flight(self) -> tuple[int, int]:
        """Unacknowledged alarms: (not yet in the journal, journaled with the ACK on its way)."""
        waiting = [i for s in self.senders for i in s.outbox]
        journal = self.system.station.journal
        if not waiting or journal is None:
            return 0, 0
        marks = ",".join("?" * len(waiting))
        stored = journal.db.execute(
            f"SELECT COUNT(*) FROM alarm_events WHERE alarm_id IN ({marks})", waiting).fetchone()[0]
        return len(waiting) - stored, stored

    async def reset_mid_burst(self, *, timeout: float = 10.0) -> int:
        """Wait until alarms await their ACK on open connections, one of them already journaled
        (its ACK on the wire), then reset every alarm connection at once (an RST both ways);
        returns how many were reset."""
        proxy = self.system.tcp_proxy
        assert proxy is not None
        await wait_until(lambda: proxy.counters["open"] == len(self.links)
                         and self.in_flight()[1] >= 1, timeout=timeout,
                         what="an alarm journaled whose ACK is still on its way")
        if not self.resets:  # what the first connections carried is not a re-send
            self._resent_before = sum(s.resent for s in self.senders)
        n = proxy.reset_connections()
        self.resets += n
        return n

    async def wait_reconnected(self, timeout: float = 10.0) -> None:
        """Until every device has a new connection (its HELLO re-sends its outbox)."""
        want = 1 + self.resets // max(len(self.links), 1)
        await wait_until(lambda: all(link.connections >= want for link in self.links),
                         timeout=timeout, what="every device reconnected")

    async def drain(self, timeout: float = 10.0) -> None:
        """Stop sampling (no new alarms), keep the alarm links up until every outbox is empty."""
        for link in self.links:
            await link.stop_telemetry()
        await wait_until(lambda: self.unacknowledged() == 0, timeout=timeout,
                         what="every outbox emptied by the station's ACKs")

    def raised(self) -> pd.DataFrame:
        """Every alarm id the devices raised, in order per device: ``alarm_id``, ``bed``."""
        rows = [(alarm_id, s.bed) for s in self.senders for alarm_id in s.raised]
        return pd.DataFrame(rows, columns=["alarm_id", "bed"])

    def journal(self) -> pd.DataFrame:
        """The devices' alarms as the station journaled them (its own technical alarms, ids
        ``station-...``, left out), read from the SQLite file as anyone could read it."""
        with sqlite3.connect(self.journal_path) as db:
            return pd.read_sql_query(DEVICE_ALARMS_SQL, db)

    def counters(self) -> dict[str, int]:
        """raised, journaled, re-sent after reconnect, duplicates ignored, resets."""
        listener = self.system.station.alarm_listener
        return {"raised": sum(len(s.raised) for s in self.senders),
                "journaled": self.journaled(),
                "re-sent after reconnect": (sum(s.resent for s in self.senders)
                                            - self._resent_before),
                "duplicates ignored": listener.duplicates if listener is not None else 0,
                "connections reset": self.resets}

    async def stop(self) -> None:
        """Stop the ward, the proxy and the station, and remove the journal's folder."""
        await self.system.stop()
        self._tmp.cleanup()


def alarm_channel_capture(folder: str | Path, *, live: bool | None = None) -> AlarmCapture:
    """A capture of the alarm channel under loss: recorded live into ``folder`` when this
    machine can (root and nftables; ``live=False`` never tries), else the recorded one. If the
    live recording fails, the recorded capture is returned with the reason in its note."""
    reason = unavailable_reason() if live is not False else "live=False"
    if reason is None:
        try:
            return record_alarm_channel(folder)
        except (OSError, RuntimeError, TimeoutError, ValueError, IndexError,
                subprocess.SubprocessError,
                sqlite3.Error) as exc:
            reason = f"the live recording failed ({type(exc).__name__}: {exc})"
    return AlarmCapture(RECORDED_CAPTURE, False,
                        f"the recorded {RECORDED_CAPTURE.name} (no live capture: {reason})")
