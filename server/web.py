"""Tornado handlers: the JSON API under /api/, /healthz, the dashboard's WebSocket and its files.

Handlers are thin: they read from and act on the :class:`~server.station.Station` given to them in
``initialize``; nothing is kept on the handler classes themselves.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tornado.web
import tornado.websocket
from bokeh.util.paths import bokehjs_path

from .hub import encode as encode_ws

if TYPE_CHECKING:
    from .station import Station

log = logging.getLogger("server.web")

DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "dashboard"
CSP = ("default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; "
       "style-src 'self' 'unsafe-inline'; script-src 'self'; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'")


class ApiError(tornado.web.HTTPError):
    """A 4xx with a message the client can read."""


class JsonHandler(tornado.web.RequestHandler):
    def initialize(self, station: Station) -> None:
        self.station = station

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")

    def write_json(self, data: Any) -> None:
        self.finish(json.dumps(data, allow_nan=False, default=_jsonable))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.log_message if isinstance(exc, tornado.web.HTTPError) and exc.log_message \
            else self._reason
        self.finish(json.dumps({"error": message, "status": status_code}))

    def float_arg(self, name: str) -> float | None:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return None
        try:
            return float(raw)
        except ValueError:
            raise tornado.web.HTTPError(400, f"{name}={raw!r} is not a number") from None

    def bed_or_404(self, bed_id: str):
        bed = self.station.beds.beds.get(int(bed_id))
        if bed is None:
            known = sorted(self.station.beds.beds)
            raise tornado.web.HTTPError(404, f"no bed {bed_id}; known beds: {known}")
        return bed


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


class HealthHandler(JsonHandler):
    def get(self) -> None:
        self.write_json({"status": "ok", "beds": len(self.station.beds.beds)})


class BedsHandler(JsonHandler):
    def get(self) -> None:
        self.write_json({"beds": self.station.bed_summaries()})


class BedHandler(JsonHandler):
    def get(self, bed_id: str) -> None:
        bed = self.bed_or_404(bed_id)
        self.write_json({**self.station.bed_summary(bed.bed), "stats": bed.stats.snapshot()})


class HistoryHandler(JsonHandler):
    def get(self, bed_id: str) -> None:
        bed = self.bed_or_404(bed_id)
        since = self.float_arg("since")
        rows = [m for m in bed.history if since is None or m.sent_at >= since]
        fields = ("hr", "spo2", "rr", "temp", "nibp_sys", "nibp_dia", "nibp_map")
        self.write_json({"bed": bed.bed, "t": [m.sent_at for m in rows],
                         **{f: [getattr(m, f) for m in rows] for f in fields}})


class AlarmsHandler(JsonHandler):
    STATES = ("active", "acknowledged", "cleared")

    def get(self) -> None:
        state = self.get_query_argument("state", None)
        if state is not None and state not in self.STATES:
            raise tornado.web.HTTPError(400, f"state={state!r}; expected one of {self.STATES}")
        since = self.float_arg("since")
        entries = [e.to_json() for e in self.station.board.entries(state)
                   if since is None or e.updated_at >= since]
        self.write_json({"alarms": entries})


class StatsHandler(JsonHandler):
    def get(self) -> None:
        self.write_json(self.station.stats())


class DashboardSocket(tornado.websocket.WebSocketHandler):
    """One dashboard; its commands (ack, silence, subscribe) are described in docs/PROTOCOL.md."""

    def initialize(self, station: Station) -> None:
        self.station = station

    def check_origin(self, origin: str) -> bool:
        return True  # dashboards are served by this station; tests and labs connect directly

    def open(self) -> None:
        self.station.hub.add(self)

    def on_message(self, message: str | bytes) -> None:
        client = self.station.hub.clients.get(self)
        try:
            reply = self.station.command(message, client)
        except ValueError as exc:
            reply = {"type": "error", "error": str(exc)}
        if reply is not None and client is not None:
            client.offer_alarm(encode_ws(reply))

    def on_close(self) -> None:
        self.station.spawn(self.station.hub.remove(self))


class DashboardFiles(tornado.web.StaticFileHandler):
    """The dashboard's static files, with a Content-Security-Policy that allows only this host."""

    def set_extra_headers(self, path: str) -> None:
        # BokehJS styles its plots from script, hence 'unsafe-inline' for styles only;
        # no script from anywhere but this station runs on the page
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-cache")


def make_app(station: Station) -> tornado.web.Application:
    args = {"station": station}
    return tornado.web.Application([
        (r"/healthz", HealthHandler, args),
        (r"/api/beds", BedsHandler, args),
        (r"/api/beds/(\d+)", BedHandler, args),
        (r"/api/beds/(\d+)/history", HistoryHandler, args),
        (r"/api/alarms", AlarmsHandler, args),
        (r"/api/stats", StatsHandler, args),
        (r"/ws", DashboardSocket, args),
        # BokehJS from the installed bokeh package: always the version Python has, never a CDN
        (r"/bokeh/static/(.*)", DashboardFiles, {"path": str(bokehjs_path())}),
        (r"/(.*)", DashboardFiles, {"path": str(DASHBOARD_DIR), "default_filename": "index.html"}),
    ])
