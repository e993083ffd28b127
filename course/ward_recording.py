"""Recording the whole system for analysis: what a dashboard received and when, the station's
history and counters as pandas frames, and each alarm's journey from the patient to the screen.

Lab 05 measures the system end to end, so it needs a dashboard it can read: a
:class:`DashboardRecorder` is a WebSocket client on the notebook's own event loop that stamps
every message with its receive time. A :class:`StalledDashboard` is the opposite, a dashboard that
stops reading, to show the hub dropping vitals (latest wins) but never alarms. The functions below
join the recorder's stamps with the devices', the journal's and a virtual-time replay of each bed,
so that an alarm's latency can be broken into its parts.

Everything here uses the station's public contracts (WebSocket schema, HTTP API) or the public
attributes of :class:`~server.system.System`; it lives beside ``server`` because it starts and
talks to the whole system, which ``vitalsim`` never does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable

import pandas as pd
from tornado.httpclient import AsyncHTTPClient
from tornado.websocket import WebSocketClientConnection, websocket_connect

from course.replay import BedReplay, replay_bed, with_onsets
from course.waiting import wait_until
from course.websocket import RawWebSocket
from server.alarm_source import alarm_source
from server.system import System

VITAL_COLUMNS = ["received_at", "bed", "hr", "spo2", "rr", "temp", "nibp_sys", "sent_at",
                 "news2", "news2_band"]
ALARM_COLUMNS = ["received_at", "via", "alarm_id", "bed", "condition", "priority", "state",
                 "raised_at", "updated_at", "condition_present", "source", "raises"]


def ws_url(system: System) -> str:
    return f"ws://{system.station.config.host}:{system.station.http_port}/ws"


class DashboardRecorder:
    """A dashboard that records: every WebSocket message the station pushes, with the wall time
    it arrived here. ``await start()``, let the system run, ``await stop()``, then read frames.

    It uses tornado's message callback, so a message is stamped when the client has decoded it,
    not when some later code got round to reading it."""

    def __init__(self, url: str, *, clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.clock = clock
        self.messages: list[tuple[float, dict]] = []
        self.closed = asyncio.Event()
        self._conn: WebSocketClientConnection | None = None

    async def start(self, timeout: float = 5.0) -> DashboardRecorder:
        self._conn = await asyncio.wait_for(
            websocket_connect(self.url, on_message_callback=self._on_message), timeout)
        return self

    def _on_message(self, raw: str | bytes | None) -> None:
        if raw is None:
            self.closed.set()
            return
        self.messages.append((self.clock(), json.loads(raw)))

    def send(self, command: dict) -> None:
        """A dashboard command (ack, silence, subscribe), as the browser would send it."""
        if self._conn is None:
            raise RuntimeError("the recorder is not connected; await start() first")
        self._conn.write_message(json.dumps(command))

    async def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def counts(self) -> dict[str, int]:
        """Messages received, by type."""
        return dict(Counter(msg["type"] for _, msg in self.messages))

    def latest_vitals(self) -> dict[int, dict]:
        """The most recent summary of each bed seen so far (snapshot or vitals)."""
        beds: dict[int, dict] = {}
        for _, msg in self.messages:
            if msg["type"] in ("snapshot", "vitals"):
                for b in msg["beds"]:
                    beds[b["bed"]] = b
        return beds

    def vitals(self) -> pd.DataFrame:
        """One row per bed per snapshot or vitals message, with the NEWS2 total the station
        sent alongside (``news2``) and the wall time the message arrived (``received_at``)."""
        rows = []
        for at, msg in self.messages:
            if msg["type"] not in ("snapshot", "vitals"):
                continue
            for b in msg["beds"]:
                score = b.get("news2") or {}
                rows.append([at, b["bed"], b.get("hr"), b.get("spo2"), b.get("rr"),
                             b.get("temp"), b.get("nibp_sys"), b.get("sent_at"),
                             score.get("total"), score.get("band")])
        return pd.DataFrame(rows, columns=VITAL_COLUMNS)

    def alarms(self) -> pd.DataFrame:
        """One row per alarm entry received: ``via`` is "snapshot" for alarms already on the
        board when the recorder connected, "push" for each alarm entry pushed after that (one per
        ``alarm`` message, every entry of an ``alarms`` message)."""
        rows = []
        for at, msg in self.messages:
            if msg["type"] == "snapshot":
                entries = [("snapshot", a) for a in msg["alarms"]]
            elif msg["type"] == "alarm":
                entries = [("push", msg["alarm"])]
            elif msg["type"] == "alarms":  # one second's technical alarms, grouped
                entries = [("push", a) for a in msg["alarms"]]
            else:
                continue
            for via, a in entries:
                rows.append([at, via, a["alarm_id"], a["bed"], a["condition"], a["priority"],
                             a["state"], a["raised_at"], a["updated_at"], a["condition_present"],
                             a["source"], a.get("raises", 1)])
        return pd.DataFrame(rows, columns=ALARM_COLUMNS)


class StalledDashboard:
    """A dashboard that does the WebSocket handshake, says what it wants, and never reads
    again, with a tiny receive buffer: what a frozen browser tab looks like to the station.
    Its kernel buffers fill within seconds, after which the hub replaces (drops) its vitals and
    keeps queueing its alarms. (Lab 03's plain-socket client, which simply stops reading.)"""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.ws: RawWebSocket | None = None

    async def start(self, subscribe: dict | None = None, timeout: float = 5.0) -> StalledDashboard:
        self.ws = await RawWebSocket.connect(self.host, self.port, rcvbuf=4096, timeout=timeout)
        if subscribe is not None:
            await self.ws.send_text(json.dumps(subscribe))
        return self

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self.ws = None


async def history_frame(system: System, bed: int, *, channels: str | None = None) -> pd.DataFrame:
    """``/api/beds/{bed}/history`` as a DataFrame, indexed by the device's send time ``t``.

    Fetched asynchronously: a blocking ``pd.read_json(url)`` from a notebook cell would stop the
    very event loop that has to answer it."""
    url = f"{system.url}api/beds/{bed}/history"
    if channels:
        url += f"?channels={channels}"
    resp = await AsyncHTTPClient().fetch(url, request_timeout=10)
    data = json.loads(resp.body)
    data.pop("bed")
    return pd.DataFrame(data).set_index("t")


async def drain(system: System, recorder: DashboardRecorder | None = None, *,
                timeout: float = 10.0, telemetry_grace: float = 2.0) -> None:
    """Stop every device sampling (no new datagrams or alarms), then wait until what is still
    on its way has arrived, so that the counters of both ends can be compared:

    - alarms, with a hard deadline (``timeout``, else TimeoutError): every alarm ACKed (the
      outboxes empty) and, with a recorder, every journaled alarm event seen by it. Alarms
      must never be lost, so not arriving is an error;
    - telemetry, for at most ``telemetry_grace`` seconds: every datagram the devices sent has
      reached the proxy, and every one the proxy decided to deliver (after its delay and
      jitter) has reached the station. A datagram a kernel buffer dropped never arrives, and
      that is UDP doing what UDP does, so after the grace period the counters show it as lost.
    """
    if system.ward is None:
        raise RuntimeError("the system has no ward running")
    links = system.ward.links
    for link in links:
        await link.stop_telemetry()
    station = system.station
    assert station.journal is not None

    def alarms_settled() -> bool:
        if any(link.sender.outbox for link in links):
            return False
        return recorder is None or not undelivered_alarms(system, recorder)

    def telemetry_arrived() -> bool:
        expected = sum(link.datagrams_sent for link in links)
        if system.udp_proxy is not None:
            proxy = system.udp_proxy.counters
            if proxy["received"] < expected:
                return False
            expected = proxy["delivered"]
        ingest = station.ingest.counters()
        return ingest["received"] + ingest["rejected_total"] >= expected

    try:
        await wait_until(alarms_settled, timeout=timeout, what="every alarm delivered")
    except TimeoutError:
        left = {link.monitor.bed: list(link.sender.outbox) for link in links
                if link.sender.outbox}
        missing = [] if recorder is None else undelivered_alarms(system, recorder)
        raise TimeoutError(f"after {timeout}s alarms were still in flight: outboxes {left}, "
                           f"not yet at the dashboard {missing}") from None
    with contextlib.suppress(TimeoutError):  # after the grace, what is missing counts as lost
        await wait_until(telemetry_arrived, timeout=telemetry_grace,
                         what="every datagram sent")


def undelivered_alarms(system: System, recorder: DashboardRecorder) -> list[str]:
    """Ids of the device alarm events in the station's journal that the recorder has not seen,
    either pushed or, for those before it connected, on the board in its snapshot.

    The board keeps one entry per bed and condition: the entry has the id of the raise that
    began it, and later raises of the same condition fold into it, counted by ``raises``. So the
    k-th raise of an entry is seen when the entry arrives with ``raises`` of at least k, and the
    clear that follows it (a cleared event's id is its raise's id plus "c") when the entry
    arrives with ``raises`` above k, or equal to k with ``condition_present`` false. Counting
    makes this hold when a dashboard that fell behind gets only an entry's latest state."""
    assert system.station.journal is not None
    seen = recorder.alarms()
    most: dict[str, int] = {}  # entry id -> the most raises it arrived with
    cleared: dict[str, int] = {}  # entry id -> the raises it had when it arrived cleared
    for alarm_id, raises, present in zip(seen["alarm_id"], seen["raises"],
                                         seen["condition_present"], strict=True):
        most[alarm_id] = max(most.get(alarm_id, 0), int(raises))
        if not present:
            cleared[alarm_id] = max(cleared.get(alarm_id, 0), int(raises))
    series: dict[tuple[int, str], tuple[str, int]] = {}  # (bed, condition) -> (entry id, k)
    ordinal: dict[str, tuple[str, int]] = {}  # raise id -> (its entry's id, which raise)
    missing = []
    for e in system.station.journal.events():
        event_id = e["alarm_id"]
        if alarm_source(event_id) == "station":
            continue
        key = (e["bed"], e["condition"])
        if e["state"] == "raised":
            if event_id in most or key not in series:  # it began an entry (or should have)
                series[key] = (event_id, 1)
            else:
                head, k = series[key]
                series[key] = (head, k + 1)
            ordinal[event_id] = series[key]
            head, k = series[key]
            if most.get(head, 0) < k:
                missing.append(event_id)
        elif e["state"] == "cleared":
            raise_id = event_id[:-1] if event_id.endswith("c") else event_id
            head, k = ordinal.get(raise_id, (raise_id, 1))
            if not (most.get(head, 0) > k or cleared.get(head, 0) >= k):
                missing.append(event_id)
    return missing


def replays(system: System) -> dict[int, BedReplay]:
    """Each bed of the running ward replayed on virtual time, as far as the device got: the
    same patient (scenario and seed), limits and device id, hence the same alarm ids."""
    if system.ward is None:
        raise RuntimeError("the system has no ward running")
    out = {}
    for link in system.ward.links:
        m = link.monitor
        last = m.latest.t if m.latest is not None else 0.0
        out[m.bed] = replay_bed(m.scenario_name, seed=m.model.seed, duration=last + 1,
                                bed=m.bed, device_id=m.device_id, limits=m.alarms.limits,
                                boot_id=m.boot_id)
    return out


TIMELINE_COLUMNS = ["bed", "alarm_id", "condition", "priority", "delay", "speed", "onset_sim",
                    "onset", "due", "raised", "journaled", "shown"]


def alarm_timeline(system: System, recorder: DashboardRecorder) -> pd.DataFrame:
    """One row per device alarm that the recorder saw pushed, with the wall time (seconds since
    the epoch) of each step of its journey:

    - ``onset``: when the patient's monitored value first crossed the limit (from the replay's
      numerics, in simulated time ``onset_sim``, converted to wall time at the ward's speed);
    - ``due``: onset plus the limit's alarm ``delay`` (simulated seconds, so ``delay / speed``
      of wall time): when the monitor's rule says the alarm should sound;
    - ``raised``: when the device actually raised it (the event's own timestamp);
    - ``journaled``: when the station stored it in its journal (it is pushed to dashboards at
      once, and ACKed to the device);
    - ``shown``: when the recorder, a dashboard, received it.
    """
    station = system.station
    assert station.journal is not None and system.ward is not None
    journal = {e["alarm_id"]: e for e in station.journal.events()}
    pushed = recorder.alarms()
    pushed = pushed[(pushed["via"] == "push") & (pushed["source"] == "device")]
    first_seen = pushed.groupby("alarm_id")["received_at"].min()
    rows = []
    for link in system.ward.links:
        zero, speed = link.started_at, link.speed
        for a in with_onsets(replays(system)[link.monitor.bed]).itertuples():
            if a.alarm_id not in first_seen.index or a.alarm_id not in journal:
                continue  # raised before the recorder connected: no receive time to compare
            event = journal[a.alarm_id]
            onset = zero + a.onset / speed
            rows.append([a.bed, a.alarm_id, a.condition, a.priority, a.delay, speed, a.onset,
                         onset, onset + a.delay / speed, event["timestamp"],
                         event["received_at"], float(first_seen[a.alarm_id])])
    return pd.DataFrame(rows, columns=TIMELINE_COLUMNS)


def protocol_counters(system: System, recorder: DashboardRecorder) -> dict[str, dict[str, int]]:
    """What each protocol carried and lost, from both ends, in one dict (read it after
    :func:`drain`, while the system still runs: stopping it closes the proxies). UDP: what the
    devices sent, what the proxy dropped and delivered, what the station received and what it
    counted lost from sequence gaps; TCP: alarm events raised and journaled; WebSocket: what
    the recorder got, and what the hub dropped or disconnected for slow dashboards."""
    station = system.station
    assert station.journal is not None and system.ward is not None
    links = system.ward.links
    pushed = recorder.alarms()
    hub = station.hub.counters()
    return {
        "udp": {
            "sent": sum(link.datagrams_sent for link in links),
            "proxy_dropped": system.udp_proxy.counters["dropped"] if system.udp_proxy else 0,
            "proxy_delivered": system.udp_proxy.counters["delivered"] if system.udp_proxy
            else sum(link.datagrams_sent for link in links),
            "received": station.ingest.received,
            "lost_by_sequence": sum(b.stats.lost for b in station.beds.beds.values()),
        },
        "tcp": {
            "raised": sum(link.alarms_raised for link in links),
            "journaled": station.journal.count("device"),
            "duplicates": station.alarm_listener.counters()["duplicates"]
            if station.alarm_listener else 0,
            "unacked": sum(len(link.sender.outbox) for link in links),
        },
        "websocket": {
            "vitals_received": recorder.counts().get("vitals", 0),
            # what every dashboard was offered of the replaceable kinds since the recorder
            # connected: the recorder reads at once, so it got them all
            "vitals_and_stats_received": sum(recorder.counts().get(k, 0)
                                             for k in ("vitals", "stats")),
            "alarm_messages_received": int(((pushed["via"] == "push")
                                            & (pushed["source"] == "device")).sum()),
            "alarm_events_not_shown": len(undelivered_alarms(system, recorder)),
            "updates_superseded": hub["superseded"],
            "disconnected_slow": hub["disconnected_slow"],
        },
    }
