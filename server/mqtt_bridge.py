"""The station's MQTT bridge (``python -m server --mqtt HOST:PORT``): thin glue around the station.

A hospital has several wards, each with its own station, and systems that all want their data.
The bridge hands this station's data to a real broker (Eclipse Mosquitto in the course) under
``hospital/{ward}/...`` (server/mqtt_topics.py), so that a hospital view, or anything else,
subscribes once for every ward:

- each bed's vitals at QoS 0, retained (latest wins: a new subscriber reads every bed's last
  values at once), published as they change;
- each alarm event at QoS 1, keyed by its alarm id. QoS 1 is *at least* once: a PUBACK lost
  in a reset means the bridge publishes again, so a consumer keeps the ids it has seen
  (server/hospital.py) and gets each alarm exactly once by id;
- the station's status, retained, with a Last Will that says ``online: false``: the broker
  publishes it when the bridge's connection dies without a goodbye.

The bridge never blocks the station's loop: the station only adds to the bridge's outbox (a
set of beds, a dict of alarms) and wakes it; a task publishes, reconnects on its own with a
growing back-off, and re-publishes after every reconnect what the broker may have lost: every
bed's vitals, the status and every alarm not yet acknowledged by a PUBACK.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import asdict
from typing import TYPE_CHECKING

import aiomqtt

from vitalsim.protocol import AlarmMessage

from .alarm_board import AlarmEntry
from .mqtt_topics import (
    MAX_OPEN,
    SCHEMA,
    alarms_topic,
    check_ward,
    encode,
    open_alarms_topic,
    status_payload,
    status_topic,
    vitals_topic,
)

if TYPE_CHECKING:
    from .station import Station

log = logging.getLogger("server.mqtt_bridge")


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (the broker), with a message naming what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError(f"--mqtt {text!r}: expected HOST:PORT with a port 1..65535, "
                         "e.g. 127.0.0.1:1883")
    return host, int(port)


def settle(client: aiomqtt.Client) -> None:
    """Read why a finished connection ended. aiomqtt keeps the reason for an unexpected
    disconnection on a future that only its message iterator reads: a connection that ended
    elsewhere (a publish failed first) leaves it unread, and asyncio then prints "Future
    exception was never retrieved" on stderr whenever the client is collected, in the middle of
    whatever runs then (a notebook cell). The reason is already in the MqttError we caught."""
    ended = getattr(client, "_disconnected", None)
    if isinstance(ended, asyncio.Future) and ended.done() and not ended.cancelled():
        ended.exception()


class AlarmOutbox:
    """Alarm events not yet acknowledged by the broker (PUBACK), in the order they came.

    Sans-I/O, the bridge's only memory of alarms: an event stays until its PUBACK, and after a
    reconnect every one still here is published again. Bounded: beyond ``limit`` the oldest
    is dropped and counted (``dropped``); the station's journal still holds it."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self.pending: OrderedDict[str, bytes] = OrderedDict()
        self.counters = {"queued": 0, "acknowledged": 0, "published": 0, "republished": 0,
                         "dropped": 0}
        self._sent: set[str] = set()  # ids published at least once on some connection

    def add(self, alarm_id: str, payload: bytes) -> None:
        if alarm_id in self.pending:
            return
        self.pending[alarm_id] = payload
        self.counters["queued"] += 1
        while len(self.pending) > self.limit:
            old, _ = self.pending.popitem(last=False)
            self._sent.discard(old)
            self.counters["dropped"] += 1
            log.error("MQTT alarm outbox over %d: dropped alarm %s (it is in the journal)",
                      self.limit, old)

    def sending(self, alarm_id: str) -> None:
        self.counters["republished" if alarm_id in self._sent else "published"] += 1
        self._sent.add(alarm_id)

    def acknowledged(self, alarm_id: str) -> None:
        if self.pending.pop(alarm_id, None) is not None:
            self._sent.discard(alarm_id)
            self.counters["acknowledged"] += 1


def alarm_payload(ward: str, event: AlarmMessage, entry: AlarmEntry) -> bytes:
    """One alarm event: its id is the consumer's dedup key; the entry is the board's view."""
    return encode({"schema": SCHEMA, "ward": ward, "alarm_id": event.alarm_id,
                   "event": asdict(event), "entry": entry.to_json()})


class MqttBridge:
    """``bridge = MqttBridge(station, "127.0.0.1", 1883, ward="icu"); bridge.start()`` on the
    station's loop; ``await bridge.stop()``. ``connected`` and ``counters`` say how it goes."""

    def __init__(self, station: Station, host: str, port: int, *, ward: str = "ward1",
                 client_id: str | None = None, keepalive: int = 5,
                 username: str | None = None, password: str | None = None,
                 backoff: tuple[float, float] = (0.2, 5.0), in_flight: int = 20) -> None:
        self.station, self.host, self.port = station, host, port
        self.ward = check_ward(ward)
        # this station process: a second station given the same ward gets another client id
        # (the broker closes an older connection with the same id, and two stations would
        # kick each other off for ever) and says who it is in its status
        self.instance = secrets.token_hex(4)
        self.client_id = client_id or f"station-{ward}-{self.instance}"
        self.keepalive, self.backoff, self.in_flight = keepalive, backoff, in_flight
        self.username, self.password = username, password  # a broker with accounts
        self.outbox = AlarmOutbox()
        self.connected = False
        self.connections = 0
        self.vitals_published = 0
        self.last_error: str | None = None
        self._dirty: set[int] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._client: aiomqtt.Client | None = None
        self._open_sent: bytes | None = None  # the open alarms last published (retained)

    # -- what the station calls (never blocks) ---------------------------------------------

    def bed_changed(self, bed: int) -> None:
        self._dirty.add(bed)
        self._wake.set()

    def alarm_stored(self, event: AlarmMessage, entry: AlarmEntry) -> None:
        self.outbox.add(event.alarm_id, alarm_payload(self.ward, event, entry))
        self._wake.set()

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> MqttBridge:
        if self._task is not None:
            raise RuntimeError("the MQTT bridge is already running")
        self.station.vitals_observers.append(self.bed_changed)
        self.station.alarm_observers.append(self.alarm_stored)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mqtt-bridge")
        return self

    async def stop(self) -> None:
        """Say goodbye (status offline, then a clean DISCONNECT: the broker drops the Will)."""
        with contextlib.suppress(ValueError):
            self.station.vitals_observers.remove(self.bed_changed)
            self.station.alarm_observers.remove(self.alarm_stored)
        task, self._task = self._task, None
        if task is None:
            return
        client = self._client
        if client is not None and self.connected:
            with contextlib.suppress(aiomqtt.MqttError, asyncio.TimeoutError):
                await client.publish(status_topic(self.ward), status_payload(False, time.time(),
                                                                    self.instance),
                                     qos=1, retain=True, timeout=2.0)
        # leave the client's context normally (a clean DISCONNECT): cancelling aiomqtt while it
        # disconnects can leave it waiting for ever
        self._stopping = True
        self._wake.set()
        done, _ = await asyncio.wait({task}, timeout=10.0)
        if not done:
            log.warning("MQTT bridge of ward %s did not stop in 10 s; cancelling", self.ward)
            task.cancel()
            await asyncio.wait({task}, timeout=5.0)

    @property
    def counters(self) -> dict:
        return {"connected": self.connected, "connections": self.connections,
                "vitals_published": self.vitals_published, "alarms": dict(self.outbox.counters),
                "alarms_pending": len(self.outbox.pending), "last_error": self.last_error}

    # -- the task ---------------------------------------------------------------------------

    def _client_for(self) -> aiomqtt.Client:
        will = aiomqtt.Will(status_topic(self.ward),
                            status_payload(False, time.time(), self.instance),
                            qos=1, retain=True)
        return aiomqtt.Client(self.host, self.port, identifier=self.client_id,
                              clean_session=True, keepalive=self.keepalive, will=will,
                              username=self.username, password=self.password,
                              timeout=5.0, max_inflight_messages=self.in_flight)

    async def _run(self) -> None:
        delay = self.backoff[0]
        while not self._stopping:
            client = self._client_for()
            try:
                async with client:
                    self._client = client
                    self.connected, self.connections = True, self.connections + 1
                    self.last_error = None
                    delay = self.backoff[0]
                    log.info("MQTT bridge of ward %s connected to %s:%d", self.ward, self.host,
                             self.port)
                    await self._serve(client)
            except aiomqtt.MqttError as exc:
                self.last_error = str(exc)
                log.warning("MQTT bridge of ward %s: %s; reconnecting in %.1f s", self.ward,
                            exc, delay)
            finally:
                self.connected, self._client = False, None
                settle(client)
            if self._stopping:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff[1])

    async def _serve(self, client: aiomqtt.Client) -> None:
        await client.publish(status_topic(self.ward),
                             status_payload(True, time.time(), self.instance),
                             qos=1, retain=True)
        # what the broker may have lost while we were away: every bed's latest, every alarm
        self._dirty.update(b for b, s in self.station.beds.beds.items() if s.latest)
        self._open_sent = None
        in_flight: dict[str, asyncio.Task[None]] = {}
        # aiomqtt ends the message iterator with MqttError when the connection dies: this
        # task notices a dead broker even when there is nothing to publish
        watch = asyncio.ensure_future(self._watch(client))
        try:
            await self._loop(client, in_flight, watch)
        finally:
            for task in (watch, *in_flight.values()):
                task.cancel()
            await asyncio.gather(watch, *in_flight.values(), return_exceptions=True)

    @staticmethod
    async def _watch(client: aiomqtt.Client) -> None:
        async for _message in client.messages:
            pass

    async def _loop(self, client: aiomqtt.Client, in_flight: dict[str, asyncio.Task[None]],
                    watch: asyncio.Future[None]) -> None:
        while not self._stopping:
            if watch.done():
                watch.result()  # raises the MqttError that ended the connection
                raise aiomqtt.MqttError("the connection to the broker ended")
            self._wake.clear()
            dirty, self._dirty = self._dirty, set()
            if dirty:
                # handed to the client all at once: aiomqtt's publish waits until its packet
                # is written, one loop turn each, and one at a time that is a queue of seconds
                # in a busy station. Latest wins: a bed is here once, with its newest summary
                await asyncio.gather(*(client.publish(
                    vitals_topic(self.ward, bed), encode(self.station.bed_summary(bed)),
                    qos=0, retain=True) for bed in sorted(dirty)))
                self.vitals_published += len(dirty)
            for alarm_id, payload in list(self.outbox.pending.items()):
                if len(in_flight) >= self.in_flight:
                    break
                if alarm_id not in in_flight:
                    self.outbox.sending(alarm_id)
                    in_flight[alarm_id] = asyncio.create_task(
                        self._publish_alarm(client, alarm_id, payload))
            await self._publish_open(client)
            for alarm_id, task in list(in_flight.items()):
                if task.done():
                    del in_flight[alarm_id]
                    error = task.exception()
                    if error is not None:  # the connection died under it
                        raise error
            wake = asyncio.ensure_future(self._wake.wait())
            await asyncio.wait([wake, watch, *in_flight.values()], timeout=1.0,
                               return_when=asyncio.FIRST_COMPLETED)
            wake.cancel()

    def open_payload(self) -> bytes:
        """The ward's open alarm entries (not cleared), most urgent first, at most MAX_OPEN."""
        entries = [e for e in self.station.board.entries() if e.state != "cleared"]
        return encode({"schema": SCHEMA, "ward": self.ward, "station": self.instance,
                       "entries": [e.to_json() for e in entries[:MAX_OPEN]],
                       "more": max(0, len(entries) - MAX_OPEN)})

    async def _publish_open(self, client: aiomqtt.Client) -> None:
        """Publish the open alarms, retained, whenever they changed (looked at on each wake
        and at least once a second: an acknowledgement changes an entry too)."""
        payload = self.open_payload()
        if payload != self._open_sent:
            await client.publish(open_alarms_topic(self.ward), payload, qos=1, retain=True)
            self._open_sent = payload

    async def _publish_alarm(self, client: aiomqtt.Client, alarm_id: str, payload: bytes) -> None:
        await client.publish(alarms_topic(self.ward), payload, qos=1)
        self.outbox.acknowledged(alarm_id)  # the broker's PUBACK came
        self._wake.set()
