"""The central station as one object: create it, ``await start()``, use it, ``await stop()``.

It owns every socket and every piece of state; nothing lives at module level, so a test or a
notebook can run several stations, one after another or side by side.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Coroutine
from typing import Any

import tornado.httpserver
import tornado.netutil
from tornado.ioloop import PeriodicCallback

from vitalsim.clock import Clock, WallClock
from vitalsim.protocol import AlarmMessage

from .alarm_board import AlarmBoard
from .alarm_listener import AlarmListener
from .beds import BedRegistry
from .config import StationConfig
from .hub import Hub
from .ingest import TelemetryIngest
from .journal import AlarmJournal
from .web import make_app

log = logging.getLogger("server.station")


class Station:
    def __init__(self, config: StationConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = config or StationConfig()
        self.clock = clock or WallClock()
        self.beds = BedRegistry(self.config.history_seconds)
        self.board = AlarmBoard()
        self.journal: AlarmJournal | None = None
        self.hub = Hub(self.snapshot, max_alarm_queue=self.config.client_alarm_queue)
        self.ingest = TelemetryIngest(self.beds, self.clock, keys=self.config.telemetry_keys,
                                      require_tag=self.config.require_tag,
                                      on_numerics=self._bed_changed)
        self.alarm_listener: AlarmListener | None = None
        self.http_server: tornado.httpserver.HTTPServer | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._push: PeriodicCallback | None = None
        self._changed: set[int] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.http_port = self.udp_port = self.tcp_port = 0
        self.running = False

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self.running:
            raise RuntimeError("station is already running")
        cfg = self.config
        self.journal = AlarmJournal(cfg.journal_path)
        for event in self.journal.events():
            self.board.apply_event(_alarm_from_row(event))
        for action in self.journal.actions():
            if action["action"] == "acknowledge" and self.board.get(action["alarm_id"]):
                self.board.acknowledge(action["alarm_id"], action["user"], action["at"])
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: self.ingest, local_addr=(cfg.host, cfg.udp_port), family=socket.AF_INET)
        self.udp_port = self._udp.get_extra_info("sockname")[1]

        self.alarm_listener = AlarmListener(self.journal, self.clock, on_alarm=self._on_alarm,
                                            on_connection=self._on_alarm_connection)
        sockets = tornado.netutil.bind_sockets(cfg.tcp_port, cfg.host, family=socket.AF_INET)
        self.alarm_listener.add_sockets(sockets)
        self.tcp_port = sockets[0].getsockname()[1]

        self.http_server = tornado.httpserver.HTTPServer(make_app(self))
        sockets = tornado.netutil.bind_sockets(cfg.http_port, cfg.host, family=socket.AF_INET)
        self.http_server.add_sockets(sockets)
        self.http_port = sockets[0].getsockname()[1]

        self._push = PeriodicCallback(self._push_vitals, 1000.0 / cfg.push_hz)
        self._push.start()
        self.running = True
        log.info("station listening: http %s, udp %s, tcp %s",
                 self.http_port, self.udp_port, self.tcp_port)

    async def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        if self._push is not None:
            self._push.stop()
        await self.hub.close()
        if self.http_server is not None:
            self.http_server.stop()
            await self.http_server.close_all_connections()
        if self.alarm_listener is not None:
            self.alarm_listener.stop()
            self.alarm_listener.close_all()
        if self._udp is not None:
            self._udp.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.journal is not None:
            self.journal.close()

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.http_port}/"

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- events ----------------------------------------------------------------------------

    def _bed_changed(self, bed: int) -> None:
        self._changed.add(bed)

    def _push_vitals(self) -> None:
        if not self._changed or not self.hub.clients:
            self._changed.clear()
            return
        beds = [self.bed_summary(b) for b in sorted(self._changed)]
        self._changed.clear()
        self.hub.push_vitals({"type": "vitals", "beds": beds})

    def _on_alarm(self, event: AlarmMessage) -> None:
        entry = self.board.apply_event(event)
        self.hub.push_alarm({"type": "alarm", "alarm": entry.to_json()})

    def _on_alarm_connection(self, bed: int, connected: bool) -> None:
        state = self.beds.beds.get(bed)
        if state is not None:
            state.alarm_connected = connected
            self._changed.add(bed)

    def command(self, raw: str | bytes) -> dict | None:
        """A dashboard command. Raises ValueError with a readable reason when it is bad."""
        try:
            cmd = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"command is not JSON: {exc}") from None
        if not isinstance(cmd, dict) or not isinstance(cmd.get("type"), str):
            raise ValueError('a command is a JSON object with a "type", e.g. {"type": "ack", ...}')
        if cmd["type"] == "ack":
            alarm_id, user = cmd.get("alarm_id"), cmd.get("user", "dashboard")
            if not isinstance(alarm_id, str) or not isinstance(user, str) or not user.strip():
                raise ValueError('ack needs "alarm_id" (string) and "user" (non-empty string)')
            try:
                entry = self.board.acknowledge(alarm_id, user.strip()[:64], self.clock.now())
            except KeyError as exc:
                raise ValueError(str(exc.args[0])) from None
            assert self.journal is not None
            self.journal.record_action(alarm_id, "acknowledge", entry.acked_by or "",
                                       entry.acked_at or 0.0)
            self.hub.push_alarm({"type": "alarm", "alarm": entry.to_json()})
            return None
        raise ValueError(f"unknown command type {cmd['type']!r}; known: ['ack']")

    # -- views -----------------------------------------------------------------------------

    def bed_summary(self, bed: int) -> dict:
        return self.beds.beds[bed].summary()

    def bed_summaries(self) -> list[dict]:
        return [self.bed_summary(b) for b in sorted(self.beds.beds)]

    def snapshot(self) -> dict:
        return {
            "beds": self.bed_summaries(),
            "alarms": [e.to_json() for e in self.board.entries()],
            "stats": self.stats(),
        }

    def stats(self) -> dict:
        return {
            "udp": self.ingest.counters(),
            "tcp": self.alarm_listener.counters() if self.alarm_listener else {},
            "websocket": self.hub.counters(),
            "beds": {str(b): s.stats.snapshot() for b, s in sorted(self.beds.beds.items())},
        }


def _alarm_from_row(row: dict) -> AlarmMessage:
    return AlarmMessage(row["alarm_id"], row["device_id"], row["bed"], row["condition"],
                        row["priority"], row["state"], row["value"], row["limit_value"],
                        row["timestamp"])
