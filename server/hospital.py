"""``python -m server.hospital --mqtt HOST:PORT``: every ward of the hospital on one dashboard.

The hospital view subscribes through the broker to every ward's station (``hospital/+/...``,
server/mqtt_topics.py) and serves the station's own dashboard, its tiles grouped by ward, with
a ward whose station died (its Last Will) shown offline. It is read-only: alarms are
acknowledged at the ward's station, where the nurse is.

Its MQTT session is persistent (clean session off, a fixed client id, alarms subscribed at
QoS 1): a broker keeps the alarms published while the view was away, and re-delivers those it
has not seen acknowledged; :class:`~server.hospital_state.AlarmDedup` keeps each once by id.
Malformed messages are refused with their reason, counted, and the rest keep flowing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass

import aiomqtt
import tornado.httpserver
import tornado.netutil
import tornado.web
from tornado.ioloop import PeriodicCallback

from vitalsim.clock import Clock, WallClock

from .hospital_state import Hospital
from .hub import Hub, encode, encode_part
from .mqtt_bridge import parse_address, settle
from .mqtt_topics import SUBSCRIPTIONS, TopicError, shown
from .static_paths import DASHBOARD_DIR, bokehjs_static
from .web import DashboardFiles, DashboardSocket, JsonHandler

log = logging.getLogger("server.hospital")


@dataclass
class HospitalConfig:
    """What :class:`HospitalView` serves, and where it reads."""

    broker_host: str = "127.0.0.1"
    broker_port: int = 1883
    host: str = "127.0.0.1"
    http_port: int = 0
    client_id: str = "hospital-view"
    clean_session: bool = False  # persistent: the broker keeps alarms while the view is away
    allowed_origins: tuple[str, ...] = ()
    client_send_buffer: int = 64 * 1024
    client_alarm_queue: int = 4096
    push_hz: float = 10.0
    username: str | None = None  # a broker with accounts: the view's, which may only read
    password: str | None = None


class HospitalView:
    """``view = await HospitalView(config).start()``; ``view.url``; ``await view.stop()``."""

    def __init__(self, config: HospitalConfig | None = None, *,
                 clock: Clock | None = None) -> None:
        self.config = config or HospitalConfig()
        self.clock = clock or WallClock()
        self.sessions = None  # read-only, no operators (web.authorize checks the origin only)
        self.hospital = Hospital()
        self.hub = Hub(self.snapshot, bed_encoded=self.bed_text,
                       snapshot_message=self.snapshot_message,
                       max_alarm_queue=self.config.client_alarm_queue)
        self.mqtt_connected = False
        self.mqtt_connections = 0
        self.last_error: str | None = None
        # when the view's own link to the broker last came up or went down: with it down,
        # every ward's state is as last heard (and a broker going away publishes no Wills)
        self.broker_since: float = self.clock.now()
        self.http_port = 0
        self._changed: set[int] = set()
        self._http: tornado.httpserver.HTTPServer | None = None
        self._tick: PeriodicCallback | None = None
        self._task: asyncio.Task[None] | None = None
        # called with (kind, what) for each change taken in (a benchmark's end of the line)
        self.listeners: list = []

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> HospitalView:
        cfg = self.config
        app = tornado.web.Application([
            (r"/healthz", HospitalHealth, {"station": self}),
            (r"/api/wards", WardsHandler, {"station": self}),
            (r"/api/beds", HospitalBeds, {"station": self}),
            (r"/api/alarms", HospitalAlarms, {"station": self}),
            (r"/api/me", HospitalMe, {"station": self}),
            (r"/api/(.*)", HospitalApiNotFound, {"station": self}),
            (r"/ws", DashboardSocket, {"station": self}),
            (r"/bokeh/static/(.*)", DashboardFiles, {"path": str(bokehjs_static())}),
            (r"/(.*)", DashboardFiles, {"path": str(DASHBOARD_DIR),
                                        "default_filename": "index.html", "station": self}),
        ])
        sockets = tornado.netutil.bind_sockets(cfg.http_port, cfg.host, family=socket.AF_INET)
        self._http = tornado.httpserver.HTTPServer(app)
        self._http.add_sockets(sockets)
        self.http_port = sockets[0].getsockname()[1]
        self._tick = PeriodicCallback(self._push_tick, 1000.0 / cfg.push_hz)
        self._tick.start()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="hospital-mqtt")
        return self

    async def stop(self) -> None:
        if self._tick is not None:
            self._tick.stop()
            self._tick = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for client in list(self.hub.clients):
            client.close(1001, "the hospital view is stopping")
        if self._http is not None:
            self._http.stop()
            await self._http.close_all_connections()
            self._http = None

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.http_port}/"

    # -- MQTT ------------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = 0.2
        while True:
            client = aiomqtt.Client(self.config.broker_host, self.config.broker_port,
                                    identifier=self.config.client_id,
                                    clean_session=self.config.clean_session, keepalive=5,
                                    username=self.config.username,
                                    password=self.config.password,
                                    timeout=5.0)
            try:
                async with client:
                    self._broker_link(True)
                    delay = 0.2
                    self.mqtt_connections += 1
                    for topic in SUBSCRIPTIONS:
                        await client.subscribe(topic, qos=1)
                    async for message in client.messages:
                        self.take(str(message.topic), bytes(message.payload))
            except aiomqtt.MqttError as exc:
                self.last_error = str(exc)
                log.warning("hospital view: broker %s:%d: %s; reconnecting in %.1f s",
                            self.config.broker_host, self.config.broker_port, exc, delay)
            except Exception as exc:  # noqa: BLE001 - a bug here must not end the view for good
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("hospital view: unexpected error reading the broker; "
                              "reconnecting in %.1f s", delay)
            finally:
                self._broker_link(False)
                settle(client)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _broker_link(self, up: bool) -> None:
        if up != self.mqtt_connected:
            self.mqtt_connected, self.broker_since = up, self.clock.now()
            self.hub.push_alarm({"type": "broker", **self.broker_json()})

    def broker_json(self) -> dict:
        """The view's own link to the broker, for the page's header."""
        return {"connected": self.mqtt_connected, "since": self.broker_since,
                "broker": f"{self.config.broker_host}:{self.config.broker_port}",
                "error": None if self.mqtt_connected or self.last_error is None
                else self.last_error[:120]}

    def take(self, topic: str, payload: bytes) -> None:
        """One message from the broker into the view (refused ones are counted by reason, and
        logged at most once per reason a minute)."""
        try:
            self._take(topic, payload)
        except Exception as exc:  # noqa: BLE001 - one message's bug must never end the view
            # whatever one message does to us, the view keeps taking the next: this one is
            # counted under a fixed reason and logged, and the view goes on serving
            report = self.hospital.refusals.refuse(
                "internal_error", f"{shown(topic)}: {type(exc).__name__}: {exc}",
                self.clock.now())
            if report is not None:
                log.error("hospital view could not take a message (it goes on): %s", report)

    def _take(self, topic: str, payload: bytes) -> None:
        try:
            change = self.hospital.receive(topic, payload, self.clock.now())
        except TopicError as exc:
            report = getattr(exc, "report", None)
            if report is not None:
                log.warning("hospital view refused a message: %s", report)
            return
        if change is not None:
            self._changed_in(*change)
        while self.hospital.released:  # what waited for its ward's status
            self._changed_in(*self.hospital.released.pop(0))

    def _changed_in(self, kind: str, what: object) -> None:
        if kind == "vitals":
            self._changed.add(what)  # type: ignore[arg-type]
        elif kind == "alarm":
            self.hub.push_alarm({"type": "alarm", "alarm": what})
        elif kind == "alarms":
            self.hub.push_alarm({"type": "alarms", "alarms": what})
        else:
            ward = self.hospital.wards[what.name]  # type: ignore[attr-defined]
            self._changed.update(self.hospital.key(ward, b) for b in ward.beds)
            self.hub.push_alarm({"type": "wards", "wards": self.hospital.wards_json()})
        for listener in self.listeners:
            listener(kind, what)

    def _push_tick(self) -> None:
        if self._changed:
            changed, self._changed = self._changed, set()
            if self.hub.clients:
                self.hub.push_vitals(changed)
        self.hub.tick()

    # -- what the dashboard is sent ---------------------------------------------------------

    def bed_text(self, key: int) -> str:
        return encode_part(self.hospital.beds[key])

    def totals(self) -> dict:
        return {"udp": {}, "tcp": {}, "websocket": self.hub.counters(),
                "mqtt": {"connected": self.mqtt_connected, "connections": self.mqtt_connections,
                         "received": dict(self.hospital.received),
                         "rejected": dict(self.hospital.rejected),
                         "refused": self.hospital.refusals.to_json(),
                         "waiting_for_status": self.hospital.held,
                         "duplicate_alarms": self.hospital.dedup.duplicates}}

    def snapshot(self) -> dict:
        return {"beds": [self.hospital.beds[k] for k in sorted(self.hospital.beds)],
                "alarms": list(self.hospital.alarms.values()),
                "stats": {**self.totals(), "beds": {}}, "wards": self.hospital.wards_json(),
                "broker": self.broker_json()}

    def snapshot_message(self) -> str:
        snap = self.snapshot()
        return (encode({"type": "snapshot"})[:-1] + ',"beds":' + encode_part(snap["beds"])
                + ',"alarms":' + encode_part(snap["alarms"]) + ',"stats":'
                + encode_part(snap["stats"]) + ',"wards":' + encode_part(snap["wards"])
                + ',"broker":' + encode_part(snap["broker"]) + "}")

    def command(self, raw: str | bytes, client: object = None, operator: object = None) -> None:
        raise ValueError("the hospital view is read-only: acknowledge or silence an alarm at "
                         "its ward's station, where the nurse is")


class HospitalHealth(JsonHandler):
    needs_session = False

    def get(self) -> None:
        view: HospitalView = self.station  # type: ignore[assignment]
        self.write_json({"status": "ok" if view.mqtt_connected else "no broker",
                         "wards": len(view.hospital.wards), "beds": len(view.hospital.beds)})


class WardsHandler(JsonHandler):
    def get(self) -> None:
        view: HospitalView = self.station  # type: ignore[assignment]
        self.write_json({"wards": view.hospital.wards_json(), **view.totals()})


class HospitalBeds(JsonHandler):
    def get(self) -> None:
        view: HospitalView = self.station  # type: ignore[assignment]
        self.write_json({"beds": view.snapshot()["beds"]})


class HospitalAlarms(JsonHandler):
    def get(self) -> None:
        view: HospitalView = self.station  # type: ignore[assignment]
        self.write_json({"alarms": list(view.hospital.alarms.values())})


class HospitalMe(JsonHandler):
    """The dashboard asks who it is: nobody who may act (the view is read-only)."""

    def get(self) -> None:
        self.write_json({"sessions": False, "user": None, "role": None, "may_act": False})


class HospitalApiNotFound(JsonHandler):
    def get(self, path: str) -> None:
        raise tornado.web.HTTPError(404, f"no API at /api/{path[:60]}; the hospital view has "
                                         "/api/wards, /api/beds, /api/alarms and /api/me")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m server.hospital", description=__doc__)
    p.add_argument("--mqtt", metavar="HOST:PORT", required=True, help="the broker")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--http-port", type=int, default=8090, help="0: any free port")
    p.add_argument("--client-id", default="hospital-view",
                   help="the view's MQTT client id: its persistent session at the broker")
    p.add_argument("--mqtt-user", metavar="USER", default=None,
                   help="the view's account at a broker with accounts (hospital-view in the "
                        "course's); its password from the environment, MQTT_PASSWORD")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    try:
        broker_host, broker_port = parse_address(args.mqtt)
    except ValueError as exc:
        p.error(str(exc))
    password = os.environ.get("MQTT_PASSWORD")
    if args.mqtt_user is not None and not password:
        p.error(f"--mqtt-user {args.mqtt_user} needs its password in the environment variable "
                "MQTT_PASSWORD (never on the command line)")
    if not 0 <= args.http_port <= 65535:
        p.error(f"--http-port {args.http_port} is outside 0..65535")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = HospitalConfig(broker_host, broker_port, host=args.host, http_port=args.http_port,
                            client_id=args.client_id, username=args.mqtt_user,
                            password=password if args.mqtt_user else None)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            view = await HospitalView(config).start()
        except OSError as exc:
            print(f"error: cannot listen: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        print(f"hospital: {view.url}  (from {args.mqtt}; read-only; Ctrl-C stops)", flush=True)
        try:
            await stop.wait()
        finally:
            await view.stop()

    asyncio.run(run())


if __name__ == "__main__":
    main()
