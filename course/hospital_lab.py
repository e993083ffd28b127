"""Lab 08's hospital: two wards, a real mosquitto, the hospital view, and what they showed.

:class:`HospitalLab` starts, on the notebook's own loop and on free ports of 127.0.0.1:

- a real Eclipse Mosquitto (:class:`course.mqtt_broker.Mosquitto`);
- ward ``icu``: a station with its ward of 3 beds in the notebook's process, whose heart-rate
  limit sits on the patients' own rate so that alarms raise and clear all the time; its MQTT
  bridge reaches the broker through the course's TCP impairment proxy, so that the lab can
  reset that connection;
- ward ``cardiology``: ``python -m server --mqtt ... --ward cardiology`` in a process of its
  own, so that the lab can kill it (SIGKILL: no goodbye) and see its Last Will;
- the hospital view (``server.hospital.HospitalView``), serving the dashboard for both wards;
- a listener subscribed to every ward's alarms and status at QoS 1, which keeps every delivery
  as it came, duplicates included (the raw stream a consumer sees).

Where mosquitto is not installed, :func:`recorded` gives what the same steps showed when the
course was recorded (``python -m course.hospital_lab`` records them again, into
``course/recordings/hospital-lab.json``), so that the lab can still be followed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiomqtt
import pandas as pd

from course.constants import FLAPPING_HR, RECORDINGS
from course.mqtt_broker import Mosquitto, mosquitto_unavailable_reason
from course.mqtt_qos import COLUMNS as QOS_COLUMNS
from course.mqtt_qos import qos_table
from server import System
from server.config import StationConfig
from server.hospital import HospitalConfig, HospitalView
from server.mqtt_bridge import MqttBridge
from server.system import SystemConfig
from vitalsim.devices import WardConfig
from vitalsim.impair import TcpImpairmentProxy, TcpSettings
from vitalsim.waiting import wait_until

RECORDED = RECORDINGS / "hospital-lab.json"
#: the topic filters of the wildcard exercise: what the broker delivered for each is the answer
FILTERS = ("hospital/+/bed/+/vitals", "hospital/icu/#", "hospital/+/station/status",
           "hospital/cardiology/bed/+/vitals", "hospital/+/bed/1/vitals", "hospital/#",
           "hospital/+/+", "+/icu/bed/2/vitals", "hospital/icu/bed/+")
ALARM_COLUMNS = ["n", "ward", "alarm_id", "bed", "condition", "state"]


def unavailable_reason() -> str | None:
    """Why the lab cannot run its hospital live here (no mosquitto), or None."""
    return mosquitto_unavailable_reason()


def recorded(path: Path = RECORDED) -> dict:
    """What the live steps showed when the course was recorded (for a laptop without mosquitto)."""
    return json.loads(path.read_text())


class StationProcess:
    """``python -m server --mqtt BROKER --ward WARD`` in a process of its own."""

    def __init__(self, broker: str, ward: str, beds: int = 2) -> None:
        self.ward = ward
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server", "--beds", str(beds), "--no-auth", "--journal",
             ":memory:", "--http-port", "0", "--udp-port", "0", "--tcp-port", "0",
             "--scenario", "stable_adult", "--mqtt", broker, "--ward", ward],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def ready(self) -> None:
        """Block until the station has printed its ports (it is then publishing)."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("telemetry:"):
                return
        self.proc.wait()
        raise RuntimeError(f"python -m server --mqtt --ward {self.ward} did not start "
                           f"(exit {self.proc.returncode})")

    def kill(self) -> None:
        """SIGKILL: the station says nothing; only the broker notices its connection die."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class ResetNotes(logging.Filter):
    """The lines the MQTT client library (paho-mqtt, under aiomqtt) and the bridge log when a
    connection is reset ("failed to receive on socket: [Errno 104] Connection reset by peer"),
    counted instead of printed while the lab resets connections on purpose: they are the resets
    the lab made, and in a notebook they would appear, unexplained, in the middle of a cell."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "Connection reset by peer" in text or "failed to receive on socket" in text:
            self.count += 1
            return False
        return True

    @contextlib.contextmanager
    def kept_from(self, *loggers: logging.Logger):
        for logger in loggers:
            logger.addFilter(self)
        try:
            yield self
        finally:
            for logger in loggers:
                logger.removeFilter(self)


class HospitalLab:
    """``lab = await HospitalLab().start()`` ... ``await lab.stop()`` (stops everything it
    started, even halfway through a failed start)."""

    def __init__(self, *, seed: int = 8) -> None:
        self.seed = seed
        self.broker: Mosquitto | None = None
        self.icu: System | None = None
        self.proxy: TcpImpairmentProxy | None = None
        self.bridge: MqttBridge | None = None
        self.cardiology: StationProcess | None = None
        self.view: HospitalView | None = None
        self.deliveries: list[dict] = []  # every alarm and status message, as it came
        self._listener: asyncio.Task[None] | None = None
        self._listening = False

    async def start(self) -> HospitalLab:
        try:
            loop = asyncio.get_running_loop()
            self.broker = await loop.run_in_executor(None, Mosquitto().start)
            self._listener = loop.create_task(self._listen())
            await wait_until(lambda: self._listening, what="the alarm listener to subscribe")
            self.view = await HospitalView(HospitalConfig(
                "127.0.0.1", self.broker.port, client_id="lab-hospital-view")).start()
            self.cardiology = StationProcess(self.broker.address, "cardiology")
            await loop.run_in_executor(None, self.cardiology.ready)
            self.proxy = await TcpImpairmentProxy(("127.0.0.1", self.broker.port),
                                                  TcpSettings(latency=0.1)).start()
            self.icu = System(SystemConfig(
                StationConfig(http_port=0, udp_port=0, tcp_port=0),
                WardConfig(beds=3, scenario="stable_adult", seed=self.seed, speed=5.0,
                           waves=False, limits=FLAPPING_HR)))
            await self.icu.start()
            self.bridge = MqttBridge(self.icu.station, "127.0.0.1", self.proxy.port,
                                     ward="icu", backoff=(0.05, 0.5)).start()
            view = self.view
            await wait_until(lambda: len(view.hospital.beds) == 5
                             and all(w.online for w in view.hospital.wards.values()),
                             timeout=20, what="both wards' 5 beds online at the hospital view")
        except BaseException:
            await self.stop()
            raise
        return self

    async def stop(self) -> None:
        if self.bridge is not None:
            await self.bridge.stop()
        if self.icu is not None:
            await self.icu.stop()
        if self.proxy is not None:
            await self.proxy.stop()
        if self.cardiology is not None:
            self.cardiology.stop()
        if self.view is not None:
            await self.view.stop()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self.broker is not None:
            self.broker.close()
        self.bridge = self.icu = self.proxy = self.cardiology = self.view = None
        self._listener = self.broker = None

    @property
    def port(self) -> int:
        assert self.broker is not None, "the hospital is not running"
        return self.broker.port

    async def _listen(self) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port, identifier="lab-listener") as client:
            await client.subscribe("hospital/+/alarms", qos=1)
            await client.subscribe("hospital/+/station/status", qos=1)
            self._listening = True
            async for message in client.messages:
                body = json.loads(message.payload)
                topic = str(message.topic)
                row = {"n": len(self.deliveries) + 1, "ward": topic.split("/")[1],
                       "topic": topic, "retained": bool(message.retain)}
                if topic.endswith("/alarms"):
                    row.update(alarm_id=body["alarm_id"], bed=body["event"]["bed"],
                               condition=body["event"]["condition"],
                               state=body["event"]["state"])
                else:
                    row.update(online=body["online"])
                self.deliveries.append(row)

    # -- section 1: wildcards and retained values --------------------------------------------

    async def read_retained(self, topic_filter: str, timeout: float = 10.0) -> list[dict]:
        """Subscribe to ``topic_filter`` as a newcomer and return the retained messages the
        broker hands over at once: topic, ms after the SUBACK, and the payload's bed and HR.

        How we know they are all there: after subscribing, the client publishes to a topic of
        its own that it also subscribes to; the broker routes that after the retained messages
        it queued for the subscription (it handles one client's packets in order)."""
        marker = f"lab/marker/{time.monotonic_ns()}"
        got: list[dict] = []
        async with aiomqtt.Client("127.0.0.1", self.port) as client:
            await client.subscribe(marker, qos=0)
            await client.subscribe(topic_filter, qos=0)
            t0 = time.monotonic()
            await client.publish(marker, b"end", qos=0)

            async def read() -> None:
                async for message in client.messages:
                    topic = str(message.topic)
                    if topic == marker:
                        return
                    if message.retain:
                        body = json.loads(message.payload)
                        got.append({"topic": topic, "ms": (time.monotonic() - t0) * 1000,
                                    "bed": body.get("bed"), "hr": body.get("hr"),
                                    "online": body.get("online")})
            await asyncio.wait_for(read(), timeout)
        return sorted(got, key=lambda r: r["topic"])

    async def matched(self, filters: tuple[str, ...] = FILTERS) -> dict[str, list[str]]:
        """For each filter, the retained topics the broker delivered to a new subscriber."""
        return {f: [r["topic"] for r in await self.read_retained(f)] for f in filters}

    # -- section 2: QoS through resets ------------------------------------------------------

    async def qos(self, messages: int = 120) -> list[list[object]]:
        """course.mqtt_qos.qos_table on this broker: the rows of :data:`QOS_COLUMNS`."""
        return [r.row() for r in await qos_table(self.port, messages=messages)]

    # -- section 3: alarms at QoS 1 through resets of the bridge's connection ---------------

    async def alarms_through_resets(self, resets: int = 3) -> dict:
        """Reset the icu bridge's connection ``resets`` times, each when an alarm has been
        delivered but its PUBACK has not reached the bridge yet; then stop the ward and wait
        until every alarm the station journaled has been delivered. Returns the raw
        deliveries (duplicates included) and the journaled ids."""
        assert self.bridge is not None and self.icu is not None and self.proxy is not None
        bridge, st = self.bridge, self.icu.station

        def delivered() -> set[str]:
            return {d["alarm_id"] for d in self.deliveries if d.get("ward") == "icu"
                    and "alarm_id" in d}

        used: set[str] = set()  # each reset for an alarm of its own, not one already re-sent

        def puback_in_flight() -> set[str]:
            """Alarms that reached our listener through the broker, whose PUBACK the bridge
            has not had yet (100 ms on its way back through the proxy)."""
            return (delivered() & set(bridge.outbox.pending)) - used

        notes = ResetNotes()
        with notes.kept_from(logging.getLogger("mqtt"), logging.getLogger("server.mqtt_bridge")):
            for n in range(1, resets + 1):
                used |= await wait_until(puback_in_flight, timeout=20,
                                         what="an alarm delivered whose PUBACK is on its way")
                self.proxy.reset_connections()  # that PUBACK is lost: the bridge publishes again
                await wait_until(lambda n=n: bridge.connections > n, timeout=20,
                                 what=f"the bridge's reconnection {n}")
        await self.icu.ward.stop()  # no new alarms: what was raised must arrive
        self.icu.ward = None
        assert st.journal is not None

        def journaled() -> set[str]:
            return {row["alarm_id"] for row in st.journal.events()}  # type: ignore[union-attr]
        await wait_until(lambda: not bridge.outbox.pending and journaled() <= delivered(),
                         timeout=30, what="every journaled alarm delivered")
        return {"deliveries": [{k: d[k] for k in ALARM_COLUMNS}
                               for d in self.deliveries if "alarm_id" in d],
                "journaled": sorted(journaled()),
                "republished": bridge.outbox.counters["republished"],
                "resets": self.proxy.counters["resets"], "reset_notes": notes.count}

    # -- section 4: a station dies ----------------------------------------------------------

    def wards(self) -> list[dict]:
        assert self.view is not None
        return [{k: w[k] for k in ("ward", "online", "beds")}
                for w in self.view.hospital.wards_json()]

    async def kill_cardiology(self) -> dict:
        """SIGKILL cardiology's station; wait until the hospital view shows it offline."""
        assert self.cardiology is not None and self.view is not None
        view, before = self.view, self.wards()
        start = len(self.deliveries)
        killed = time.monotonic()
        self.cardiology.kill()
        await wait_until(lambda: view.hospital.wards["cardiology"].online is False,
                         timeout=15, what="cardiology's Last Will at the hospital view")
        seconds = time.monotonic() - killed
        status = [{k: d[k] for k in ("n", "topic", "retained", "online")}
                  for d in self.deliveries if "online" in d]
        return {"before": before, "after": self.wards(), "seconds": seconds,
                "status": status, "new_status": [s for s in status if s["n"] > start]}


async def record(path: Path = RECORDED) -> dict:
    """Run every live step once and write what it showed to ``path``."""
    lab = await HospitalLab().start()
    try:
        out = {"retained": await lab.read_retained("hospital/+/bed/+/vitals"),
               "matched": await lab.matched(), "qos_columns": QOS_COLUMNS,
               "qos": await lab.qos(), "alarms": await lab.alarms_through_resets(),
               "will": await lab.kill_cardiology()}
    finally:
        await lab.stop()
    path.write_text(json.dumps(out, indent=1) + "\n")
    return out


def frame(rows: list[dict], columns: list[str] | None = None) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m course.hospital_lab", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=RECORDED)
    args = p.parse_args(argv)
    reason = unavailable_reason()
    if reason is not None:
        p.error(f"recording needs a real broker, and {reason}")
    out = asyncio.run(record(args.out))
    print(f"{args.out}: {len(out['alarms']['deliveries'])} alarm deliveries, "
          f"{len(out['qos'])} QoS rows, Last Will after {out['will']['seconds']:.2f} s")


if __name__ == "__main__":
    main()
