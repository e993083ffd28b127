"""Tornado handlers: the JSON API under /api/, /healthz, the dashboard's WebSocket and its files.

Handlers are thin: they read from and act on the :class:`~server.station.Station` given to them in
``initialize``; nothing is kept on the handler classes themselves.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import socket
from typing import TYPE_CHECKING, Any

import tornado.web
import tornado.websocket

from vitalsim.physiology import WAVE_RATES

from .beds import shown
from .fhir import bed_bundle
from .hub import encode as encode_ws
from .sessions import COOKIE, Operator, origin_allowed
from .static_paths import DASHBOARD_DIR, bokehjs_static

if TYPE_CHECKING:
    from .station import Station

log = logging.getLogger("server.web")

CSP = ("default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; "
       "style-src 'self' 'unsafe-inline'; script-src 'self'; object-src 'none'; "
       "base-uri 'none'; "
       # the course's embedded view: same origin under a hub, a loopback JupyterLab otherwise
       "frame-ancestors 'self' http://127.0.0.1:* http://localhost:*")


def authorize(handler: tornado.web.RequestHandler, station: Station) -> Operator | None:
    """Who is asking, checked before anything is read or upgraded: the request's ``Origin``
    (when a browser sent one) must be the station's own or an allowed one, and with sessions
    the request must carry a session cookie or ``Authorization: Bearer TOKEN``. Raises a 403
    or 401 whose message says what to do; returns the session's operator (None without
    sessions)."""
    sessions = station.sessions
    origin = handler.request.headers.get("Origin")
    allowed = station.config.allowed_origins
    if origin is not None and not origin_allowed(origin, handler.request.host, allowed):
        if sessions is not None:
            sessions.refuse("origin")
        raise tornado.web.HTTPError(
            403, f"a page from origin {origin[:80]!r} may not use this station; allowed: its "
                 f"own (http://{handler.request.host[:80]}) and {list(allowed)} "
                 "(StationConfig.allowed_origins, python -m server --allow-origin)")
    if sessions is None:
        return None
    operator = sessions.operator(handler.get_cookie(COOKIE), station.clock.now())
    if operator is not None:
        return operator
    bearer = handler.request.headers.get("Authorization", "")
    if bearer.startswith("Bearer "):
        operator = sessions.by_token(bearer[len("Bearer "):].strip())
        if operator is not None:
            return operator
        sessions.refuse("bad_token")
        raise tornado.web.HTTPError(401, "the Bearer token is no operator's token")
    sessions.refuse("no_session")
    raise tornado.web.HTTPError(
        401, "not logged in: open the dashboard with the token URL the station printed at "
             "start (…/?token=…), or send Authorization: Bearer TOKEN")


class ApiError(tornado.web.HTTPError):
    """A 4xx with a message the client can read."""


class JsonHandler(tornado.web.RequestHandler):
    #: False for what anyone may ask (``/healthz``)
    needs_session = True

    def initialize(self, station: Station) -> None:
        self.station = station
        self.operator: Operator | None = None

    def prepare(self) -> None:
        if self.needs_session:
            self.operator = authorize(self, self.station)

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    def write_json(self, data: Any) -> None:
        # strict: a value that is not JSON (NaN, an object) is a bug to see, never a text
        # that a browser's JSON.parse refuses
        self.finish(json.dumps(data, allow_nan=False, default=_jsonable))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.log_message if isinstance(exc, tornado.web.HTTPError) and exc.log_message \
            else self._reason
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"error": message, "status": status_code}))

    def float_arg(self, name: str) -> float | None:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return None
        try:
            value = float(raw)
        except ValueError:
            raise tornado.web.HTTPError(400, f"{name}={raw[:40]!r} is not a number") from None
        if not math.isfinite(value):
            raise tornado.web.HTTPError(400, f"{name}={raw[:40]!r} is not a finite number")
        return value

    def bed_or_404(self, bed_id: str):
        if not (bed_id.isascii() and bed_id.isdigit() and len(bed_id) <= 5):
            raise tornado.web.HTTPError(
                404, f"no bed {bed_id[:12]!r}{'…' if len(bed_id) > 12 else ''}: a bed is a "
                     "number 0..65535")
        bed = self.station.beds.beds.get(int(bed_id))
        if bed is None:
            known = sorted(self.station.beds.beds)
            raise tornado.web.HTTPError(404, f"no bed {bed_id}; known beds: {known}")
        return bed


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


class ApiNotFound(JsonHandler):
    """Any other path under /api/: a JSON 404 naming the API's paths, never the dashboard's
    HTML page."""

    def get(self, path: str) -> None:
        raise tornado.web.HTTPError(
            404, f"no API at /api/{path[:60]}; see /api/beds, /api/beds/N, "
                 "/api/beds/N/history, /api/beds/N/fhir, /api/beds/N/news2, "
                 "/api/beds/N/waves/CHANNEL, /api/alarms, /api/alarms/history, /api/stats")


class HealthHandler(JsonHandler):
    needs_session = False  # a load balancer's health check: says nothing about a patient

    def get(self) -> None:
        self.write_json({"status": "ok", "beds": len(self.station.beds.beds)})


class BedsHandler(JsonHandler):
    def get(self) -> None:
        self.write_json({"beds": self.station.bed_summaries()})


class BedHandler(JsonHandler):
    def get(self, bed_id: str) -> None:
        bed = self.bed_or_404(bed_id)
        self.write_json({**self.station.bed_summary(bed.bed), "stats": bed.stats.snapshot()})


class FhirHandler(JsonHandler):
    """``/api/beds/N/fhir``: the bed's latest vitals as a FHIR R4 Bundle (server/fhir.py)."""

    def get(self, bed_id: str) -> None:
        bed = self.bed_or_404(bed_id)
        if bed.latest is None:
            raise tornado.web.HTTPError(404, f"bed {bed.bed} has sent no numerics yet")
        self.set_header("Content-Type", "application/fhir+json; charset=utf-8")
        self.write_json(bed_bundle(bed.latest, patient=self.station.patients.get(bed.bed),
                                   bundle_time=self.station.clock.now()))


class HistoryHandler(JsonHandler):
    """A bed's retained numerics as columns (``t`` plus one list per channel): what
    ``pandas.DataFrame(json)`` wants. ``?format=csv`` gives the same table as CSV."""

    DEFAULT = ("hr", "spo2", "rr", "temp", "nibp_sys", "nibp_dia", "nibp_map")
    #: telemetry version 3's numerics too, on request (``?channels=etco2,abp_map``)
    CHANNELS = (*DEFAULT, "pvc_per_min", "etco2", "awrr", "abp_sys", "abp_dia", "abp_map")

    def get(self, bed_id: str) -> None:
        bed = self.bed_or_404(bed_id)
        since = self.float_arg("since")
        raw = self.get_query_argument("channels", "")
        channels = [c.strip() for c in raw.split(",") if c.strip()] or list(self.DEFAULT)
        unknown = [c for c in channels if c not in self.CHANNELS]
        if unknown:
            raise tornado.web.HTTPError(
                400, f"channels={raw!r}: unknown {unknown}; expected some of {self.CHANNELS}")
        fmt = self.get_query_argument("format", "json")
        if fmt not in ("json", "csv"):
            raise tornado.web.HTTPError(400, f"format={fmt!r}; expected 'json' or 'csv'")
        rows = [m for m in bed.history if since is None or m.sent_at >= since]
        columns = {"t": [m.sent_at for m in rows],
                   **{c: [shown(getattr(m, c)) for m in rows] for c in channels}}
        if fmt == "csv":
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(columns)
            writer.writerows(zip(*columns.values(), strict=True))
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.set_header("Content-Disposition", f'inline; filename="bed{bed.bed}.csv"')
            self.finish(out.getvalue())
            return
        self.write_json({"bed": bed.bed, **columns})


class WavesHandler(JsonHandler):
    """The retained samples of one waveform channel: ``index`` (sample number), ``t``
    (seconds since the first retained sample) and ``value``; lost datagrams are simply absent."""

    def get(self, bed_id: str, channel: str) -> None:
        bed = self.bed_or_404(bed_id)
        chunks = list(bed.waves.get(channel, ()))
        if channel not in WAVE_RATES:
            raise tornado.web.HTTPError(
                404, f"no channel {channel!r}; channels: {sorted(WAVE_RATES)}")
        index: list[int] = []
        value: list[int] = []
        for first_index, _sent_at, samples in chunks:  # as BedState.add_wave keeps them
            index.extend(range(first_index, first_index + len(samples)))
            value.extend(samples.tolist())
        rate = WAVE_RATES[channel]
        first = index[0] if index else 0
        self.write_json({"bed": bed.bed, "channel": channel, "rate": rate, "index": index,
                         "t": [(i - first) / rate for i in index], "value": value})


class AlarmsHandler(JsonHandler):
    STATES = ("active", "acknowledged", "silenced", "cleared")

    def get(self) -> None:
        state = self.get_query_argument("state", None)
        if state is not None and state not in self.STATES:
            raise tornado.web.HTTPError(400, f"state={state!r}; expected one of {self.STATES}")
        since = self.float_arg("since")
        entries = [e.to_json() for e in self.station.board.entries(state)
                   if since is None or e.updated_at >= since]
        self.write_json({"alarms": entries})


class AlarmHistoryHandler(JsonHandler):
    """What happened to alarms, newest first: raises, clears, acknowledgements, silences,
    sounding again, audio pauses (``?bed=N`` for one bed, ``?limit=`` up to 2000)."""

    def get(self) -> None:
        bed = self.get_query_argument("bed", None)
        if bed is not None and not (bed.isascii() and bed.isdigit() and len(bed) <= 5):
            raise tornado.web.HTTPError(400, f"bed={bed[:12]!r}; expected a bed number")
        limit = self.get_query_argument("limit", "500")
        if not (limit.isascii() and limit.isdigit() and 1 <= int(limit) <= 2000):
            raise tornado.web.HTTPError(400, f"limit={limit[:12]!r}; expected 1..2000")
        now = self.station.clock.now()
        pauses = self.station.board.pauses_json(now)
        if bed is not None:  # one bed's: its history and its own audio pause only
            pauses = [p for p in pauses if p.get("bed") == int(bed)]
        self.write_json({"history": self.station.board.history_json(
            None if bed is None else int(bed), int(limit)), "pauses": pauses})


class News2Handler(JsonHandler):
    """A bed's NEWS2 observation sets, oldest first: one per cuff reading, staff entry or
    on-demand score (the dashboard's ``news2`` command), each saying what it assumed."""

    def get(self, bed_id: str) -> None:
        bed = self.bed_or_404(bed_id)
        self.write_json({"bed": bed.bed, "sets": self.station.observations.sets(bed.bed)})


class MeHandler(JsonHandler):
    """Who the session is: the dashboard shows it, and whether it may act."""

    def get(self) -> None:
        op = self.operator
        self.write_json({"sessions": self.station.sessions is not None,
                         "user": op.name if op else None, "role": op.role if op else None,
                         "may_act": op.may_act if op else self.station.sessions is None})


class StatsHandler(JsonHandler):
    def get(self) -> None:
        self.write_json(self.station.stats())


class DashboardSocket(tornado.websocket.WebSocketHandler):
    """One dashboard; its commands (ack, silence, subscribe) are described in docs/PROTOCOL.md."""

    def initialize(self, station: Station) -> None:
        self.station = station
        self.operator: Operator | None = None

    async def get(self, *args: Any, **kwargs: Any) -> None:
        """Refuse, before the upgrade, a handshake without a session or from a foreign
        origin, with a status and a JSON message (a browser's WebSocket sees the failure)."""
        try:
            self.operator = authorize(self, self.station)
        except tornado.web.HTTPError as exc:
            self.set_status(exc.status_code)
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(json.dumps({"error": exc.log_message, "status": exc.status_code}))
            return
        await super().get(*args, **kwargs)

    def check_origin(self, origin: str) -> bool:
        # authorize() has checked it already, with a message; the same rule, for Tornado's own
        return origin_allowed(origin, self.request.host, self.station.config.allowed_origins)

    def open(self) -> None:
        stream = self.ws_connection.stream if self.ws_connection else None
        if stream is not None and stream.socket is not None:
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF,
                                     self.station.config.client_send_buffer)
        self.station.hub.add(self)

    def on_message(self, message: str | bytes) -> None:
        client = self.station.hub.clients.get(self)
        try:
            reply = self.station.command(message, client, operator=self.operator)
        except ValueError as exc:
            reply = {"type": "error", "error": str(exc)}
        if reply is not None and client is not None:
            client.offer_alarm(encode_ws(reply))

    def on_close(self) -> None:
        self.station.hub.discard(self)


class DashboardFiles(tornado.web.StaticFileHandler):
    """The dashboard's static files, with a Content-Security-Policy that allows only this host."""

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")

    def initialize(self, path: str, default_filename: str | None = None,
                   station: Station | None = None) -> None:
        super().initialize(path, default_filename)
        self.station = station

    async def get(self, path: str, include_body: bool = True) -> None:
        # a NUL makes the operating system's path functions raise (a 500): no file has one
        if "\x00" in path:
            raise tornado.web.HTTPError(404)
        sessions = self.station.sessions if self.station is not None else None
        if sessions is not None and path in ("", "index.html"):
            token = self.get_query_argument("token", None)
            if token is not None:  # the token URL: trade it for a session cookie
                session = sessions.login(token, self.station.clock.now())
                if session is None:
                    sessions.refuse("bad_token")
                    raise tornado.web.HTTPError(401, "this token is no operator's token")
                # HttpOnly: no script reads it; SameSite=Strict: no other site's page sends it
                self.set_cookie(COOKIE, session, httponly=True, samesite="Strict",
                                max_age=int(sessions.max_age))
                self.redirect("./")  # relative: right behind a hub's path prefix too
                return
            if sessions.operator(self.get_cookie(COOKIE), self.station.clock.now()) is None:
                sessions.refuse("no_session")
                raise tornado.web.HTTPError(401, "not logged in: open the dashboard with the "
                                                 "token URL the station printed at start")
        await super().get(path, include_body)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        detail = exc.log_message if isinstance(exc, tornado.web.HTTPError) and exc.log_message \
            else ""
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{status_code} {self._reason}\n{detail}\n" if detail
                    else f"{status_code} {self._reason}\n")

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
        (r"/api/beds/([^/]+)", BedHandler, args),
        (r"/api/beds/([^/]+)/history", HistoryHandler, args),
        (r"/api/beds/([^/]+)/fhir", FhirHandler, args),
        (r"/api/beds/([^/]+)/waves/(\w+)", WavesHandler, args),
        (r"/api/alarms", AlarmsHandler, args),
        (r"/api/alarms/history", AlarmHistoryHandler, args),
        (r"/api/beds/([^/]+)/news2", News2Handler, args),
        (r"/api/stats", StatsHandler, args),
        (r"/api/me", MeHandler, args),
        (r"/api/(.*)", ApiNotFound, args),
        (r"/ws", DashboardSocket, args),
        # BokehJS from the installed bokeh package: always the version Python has, never a CDN
        (r"/bokeh/static/(.*)", DashboardFiles, {"path": str(bokehjs_static())}),
        (r"/(.*)", DashboardFiles, {"path": str(DASHBOARD_DIR), "default_filename": "index.html",
                                    "station": station}),
    ])
