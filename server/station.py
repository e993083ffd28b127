"""The central station as one object: create it, ``await start()``, use it, ``await stop()``.

It owns every socket and every piece of state; nothing lives at module level, so a test or a
notebook can run several stations, one after another or side by side.

Everything runs on one event loop, so no piece of work may hold it for long: a loop held for
50 ms is 50 ms of datagrams waiting in the kernel (and dropped once its buffer is full) and of
dashboards waiting. The work that grows with the ward is therefore incremental or spread:

- changes are pushed as they come (one hand-over to the hub per burst of datagrams taken in);
- staleness and technical alarms are judged for a slice of the ward at each push tick, so that
  every bed is judged once a second and no tick judges them all;
- each bed's statistics are computed only if a dashboard asks for them, a few beds per tick
  within a time budget, and encoded once per refresh; a stats message is a join;
- silences are looked up among the silenced alarms only.

:class:`~server.looplag.LoopLag` measures what is left: ``/api/stats`` reports its max and p99.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

import tornado.httpserver
import tornado.netutil
from tornado.ioloop import PeriodicCallback

from vitalsim.clock import Clock, WallClock
from vitalsim.protocol import AlarmMessage, WaveMessage

from .alarm_board import AlarmBoard, AlarmEntry
from .alarm_listener import AlarmListener
from .alarm_source import alarm_source
from .beds import BedRegistry, BedState, wave_json
from .config import StationConfig
from .gc_pauses import GcPauses
from .hl7_outbound import Hl7Outbound
from .hub import DashboardClient, Hub, encode, encode_part
from .ingest import TelemetryIngest
from .journal import AlarmJournal
from .looplag import LoopLag
from .observations import ObservationChart
from .sessions import Operator, Sessions
from .technical import TechnicalAlarms
from .tls import server_context
from .web import make_app

log = logging.getLogger("server.station")


class Station:
    def __init__(self, config: StationConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = config or StationConfig()
        self.clock = clock or WallClock()
        self.beds = BedRegistry(self.config.history_seconds,
                                wave_chunks=self.config.wave_history_seconds * 4,
                                max_beds=self.config.max_beds,
                                anti_replay=self.config.anti_replay)
        for device_id, bed in (self.config.devices or {}).items():
            self.beds.provision(device_id, bed)
        self.technical = TechnicalAlarms(
            telemetry_timeout=self.config.telemetry_timeout,
            raises_per_second=self.config.technical_raises_per_second)
        self.board = AlarmBoard(resound_after=self.config.alarm_resound_after)
        self.observations = ObservationChart()  # NEWS2 per observation set, NIBP times
        self.journal: AlarmJournal | None = None
        self.sessions = None if self.config.operators is None \
            else Sessions(self.config.operators)
        # HTTPS and TLS on the alarm channel, when given a certificate (server/tls.py)
        self._tls = None if self.config.tls_cert is None \
            else server_context(self.config.tls_cert, self.config.tls_key or self.config.tls_cert)
        self.hub = Hub(self.snapshot, bed_encoded=self.bed_text,
                       snapshot_message=self.snapshot_message,
                       max_alarm_queue=self.config.client_alarm_queue,
                       push_budget=self.config.push_budget, push_burst=self.config.push_burst)
        self.ingest = TelemetryIngest(self.beds, self.clock, keys=self.config.telemetry_keys,
                                      require_tag=self.config.require_tag
                                      or self.config.require_auth,
                                      device_keys=self.config.device_keys,
                                      on_numerics=self._numerics_arrived
                                      if self.config.coalesce else self._push_numerics_now,
                                      on_wave=self._wave_arrived if self.config.coalesce
                                      else self._push_wave_now,
                                      max_skew=self.config.max_clock_skew)
        self.loop_lag = LoopLag()
        self.gc = GcPauses(freeze=self.config.gc_freeze)
        self.alarm_listener: AlarmListener | None = None
        self.http_server: tornado.httpserver.HTTPServer | None = None
        self._udp: socket.socket | None = None
        self._push: PeriodicCallback | None = None
        self._housekeeping: PeriodicCallback | None = None
        self._changed: set[int] = set()  # beds whose vitals changed since the last hand-over
        # bed -> wave chunks not yet handed to the hub (only of beds a dashboard subscribed to)
        self._waves: dict[int, list[WaveMessage]] = {}
        self._flush_scheduled = False
        self._sweep_at = 0  # where in the ward the next slice of housekeeping starts
        self._stats_at = 0  # where in the ward the next statistics refresh starts
        # bed -> (datagrams received when refreshed, statistics, statistics encoded)
        self._bed_stats: dict[int, tuple[int, dict, str]] = {}
        self._ordered: list[BedState] = []  # the beds in bed order, for the slices
        # technical alarm entries the slices changed since the last second: one message a second
        self._technical_changed: list[AlarmEntry] = []
        self._alarm_links: Counter[int] = Counter()  # bed -> its open alarm connections
        self._encoded: dict[int, BedEncoding] = {}  # bed -> its summary as last encoded
        self._tasks: set[asyncio.Task[Any]] = set()
        self.http_port = self.udp_port = self.tcp_port = 0
        self.patients: dict[int, str] = {}  # bed -> who is in it (admission data, not telemetry)
        self.hl7: Hl7Outbound | None = None  # the HL7 v2 outbound interface, when configured
        # outbound interfaces (server/mqtt_bridge.py): told of each bed whose vitals or state
        # changed, and of each alarm event once journaled (device or technical). They must
        # not block: they note what changed and wake their own task
        self.vitals_observers: list[Callable[[int], None]] = []
        self.alarm_observers: list[Callable[[AlarmMessage, AlarmEntry], None]] = []
        # bed -> the scenario it runs: the instructor's view only (the dashboard hides it)
        self.scenarios: dict[int, str] = {}
        self.running = False

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self.running:
            raise RuntimeError("station is already running")
        cfg = self.config
        self.journal = AlarmJournal(cfg.journal_path)
        self._replay_journal()
        loop = asyncio.get_running_loop()
        # our own reader rather than create_datagram_endpoint: it takes every waiting datagram
        # per wake-up (TelemetryIngest.read_from), where asyncio's transport takes one
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._udp.setblocking(False)
            if cfg.udp_receive_buffer:
                self._udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, cfg.udp_receive_buffer)
            self._udp.bind((cfg.host, cfg.udp_port))
        except OSError:
            self._udp.close()
            self._udp = None
            raise
        self.udp_port = self._udp.getsockname()[1]
        loop.add_reader(self._udp.fileno(), self.ingest.read_from, self._udp)

        self.alarm_listener = AlarmListener(
            self.journal, self.clock, on_alarm=self._on_alarm,
            on_connection=self._on_alarm_connection, provisioned=self.beds.owns,
            dead_after=cfg.alarm_dead_after, frame_timeout=cfg.alarm_frame_timeout,
            frames_per_second=cfg.alarm_frames_per_second,
            device_keys=cfg.device_keys if cfg.require_auth else None,
            ssl_options=self._tls)
        sockets = tornado.netutil.bind_sockets(cfg.tcp_port, cfg.host, family=socket.AF_INET)
        self.alarm_listener.add_sockets(sockets)
        self.tcp_port = sockets[0].getsockname()[1]

        # idle_connection_timeout is also how long Tornado waits for a request's header: a
        # client that connects and sends nothing, or a header a byte a minute, is closed
        self.http_server = tornado.httpserver.HTTPServer(
            make_app(self), idle_connection_timeout=cfg.http_idle_timeout,
            body_timeout=cfg.http_idle_timeout, ssl_options=self._tls)
        sockets = tornado.netutil.bind_sockets(cfg.http_port, cfg.host, family=socket.AF_INET)
        self.http_server.add_sockets(sockets)
        self.http_port = sockets[0].getsockname()[1]

        self.loop_lag.start()
        self.gc.start()
        self._push = PeriodicCallback(self._push_tick, 1000.0 / cfg.push_hz)
        self._push.start()
        self._housekeeping = PeriodicCallback(self._every_second, 1000.0)
        self._housekeeping.start()
        self.running = True
        if cfg.hl7_target is not None:
            self.hl7 = Hl7Outbound(
                self.journal, self.clock, cfg.hl7_target, patient_of=self.patients.get,
                readings=lambda: [s.latest for s in self._order() if s.latest is not None],
                interval=cfg.hl7_interval, ack_timeout=cfg.hl7_ack_timeout, retry=cfg.hl7_retry)
            self.hl7.start()
        if self.sessions is None:
            # INFO, not WARNING: a notebook would print a warning into every lab's cell; the
            # demo prints it itself (python -m server --no-auth), and the labs say so
            log.info("dashboard sessions are off: anyone who can reach %s may read every "
                        "bed and acknowledge alarms", self.url)
        log.info("station listening: http %s, udp %s, tcp %s",
                 self.http_port, self.udp_port, self.tcp_port)

    async def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        if self.hl7 is not None:
            await self.hl7.stop()
        for timer in (self._push, self._housekeeping):
            if timer is not None:
                timer.stop()
        self.loop_lag.stop()
        self.gc.stop()
        await self.hub.close()
        if self.http_server is not None:
            self.http_server.stop()
            await self.http_server.close_all_connections()
        if self.alarm_listener is not None:
            self.alarm_listener.stop()
            self.alarm_listener.close_all()
        if self._udp is not None:
            asyncio.get_running_loop().remove_reader(self._udp.fileno())
            self._udp.close()
            self._udp = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.journal is not None:
            self.journal.close()

    @property
    def url(self) -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{self.config.host}:{self.http_port}/"

    def login_url(self, name: str | None = None) -> str:
        """The dashboard's URL with an operator's login token (the first nurse's when no
        ``name`` is given); the plain URL when sessions are off. Opening it logs in."""
        if self.sessions is None:
            return self.url
        users = self.sessions.users
        chosen = [u for u in users if u.name == name] if name is not None \
            else [u for u in users if u.may_act] or users
        if not chosen:
            raise KeyError(f"no operator {name!r}; operators: {[u.name for u in users]}")
        return f"{self.url}?token={chosen[0].token}"

    def token(self, name: str | None = None) -> str | None:
        """An operator's login token (as :meth:`login_url` chooses), for a script's
        ``Authorization: Bearer`` header; None when sessions are off."""
        url = self.login_url(name)
        return url.split("?token=", 1)[1] if "?token=" in url else None

    def set_anti_replay(self, on: bool) -> None:
        """Turn the anti-replay window's refusal on or off for every bed, now and to come.
        Off only to show what it prevents (lab 06): replays are then stored again."""
        self.beds.anti_replay = on
        for state in self.beds.beds.values():
            state.stats.anti_replay = on

    def provision(self, device_id: int, bed: int) -> None:
        """Let ``device_id`` send telemetry and alarms for ``bed``. Everything else is refused
        as ``unknown_device``. Raises ValueError past ``config.max_beds`` beds."""
        self.beds.provision(device_id, bed)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- events ----------------------------------------------------------------------------

    def _bed_changed(self, bed: int) -> None:
        self._changed.add(bed)
        self._schedule_flush()
        for observer in self.vitals_observers:
            observer(bed)

    def _note_numerics(self, bed: int) -> None:
        """What a bed's new numerics change beyond the bed: the worst value of its alarms
        (a lookup for a bed without any) and, at a new cuff reading, its NEWS2 set."""
        latest = self.beds.beds[bed].latest
        if latest is not None:
            for entry in self.board.device_restarted(bed, latest.boot_id, self.clock.now()):
                self._publish(entry)
            self.board.observe(bed, latest)
            self.observations.on_numerics(bed, latest)

    def _numerics_arrived(self, bed: int) -> None:
        self._note_numerics(bed)
        self._bed_changed(bed)

    def _wave_arrived(self, msg: WaveMessage) -> None:
        """A chunk for the dashboards subscribed to its bed, if any; handed over with the
        burst it came in (bounded: a burst of more than four seconds' chunks keeps the newest)."""
        if not self.hub.wants_waves(msg.bed):
            return
        chunks = self._waves.setdefault(msg.bed, [])
        chunks.append(msg)
        if len(chunks) > 4 * self.beds.wave_chunks:
            del chunks[0]
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        """Hand the changes to the hub once the loop has taken in the burst of datagrams
        that brought them (one hand-over, and one message per dashboard, per burst)."""
        if not self._flush_scheduled and self.running:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Changed beds' vitals to every dashboard that wants them, new chunks to the
        dashboards subscribed to their bed: each sent at once to a dashboard that keeps up,
        coalesced for one that does not (server.hub)."""
        self._flush_scheduled = False
        waves, self._waves = self._waves, {}
        for bed, chunks in waves.items():
            self.hub.push_replaceable(f"wave:{bed}", {
                "type": "wave", "bed": bed, "chunks": [wave_json(c) for c in chunks]}, bed=bed)
        if self._changed:
            changed, self._changed = self._changed, set()
            if self.hub.clients:
                for bed in changed:  # encoded once per change, whatever the dashboards
                    self.bed_encoded(bed)
                self.hub.push_vitals(changed)
            else:  # nobody to send them to: encoded when someone asks (bed_text)
                for bed in changed:
                    enc = self._encoded.get(bed)
                    if enc is not None:
                        enc.text = ""

    def _push_numerics_now(self, bed: int) -> None:
        """The naive design (coalesce=False): this datagram's vitals, now, to every client."""
        self._note_numerics(bed)
        if self.hub.clients:
            self.hub.push_each({"type": "vitals", "beds": [self.bed_summary(bed)]},
                               bed=bed, wave=False)

    def _push_wave_now(self, msg: WaveMessage) -> None:
        """The naive design: this chunk, now, to each client subscribed to its bed."""
        if self.hub.clients:
            self.hub.push_each({"type": "wave", "bed": msg.bed, "chunks": [wave_json(msg)]},
                               bed=msg.bed, wave=True)

    def _push_tick(self) -> None:
        """The hub's coalescing tick (``push_hz``), and one slice of the ward's housekeeping."""
        self.hub.tick()
        self._sweep(self.clock.now())
        self._refresh_bed_stats()

    def _slice(self, start: int) -> tuple[list[BedState], int]:
        """The next ``1/push_hz`` of the ward's beds from ``start``, and where the next
        slice starts: every bed once a second, in bed order, whatever the ward's size. A slice
        that reaches the end of the ward goes on from its start, so that no bed is skipped
        when the ward grew between two slices and ``start`` no longer falls on a slice's edge."""
        beds = self.beds.beds
        n = len(beds)
        if not n:
            return [], 0
        size = -(-n // max(1, round(self.config.push_hz)))  # ceil
        order = self._order()
        start %= n
        part = order[start:start + size]
        if len(part) < size:
            part += order[:size - len(part)]
        return part, (start + size) % n

    def _order(self) -> list[BedState]:
        """The beds in bed order (rebuilt when a bed is added, which is rare; beds are never
        removed)."""
        beds = self.beds.beds
        if len(self._ordered) != len(beds):
            self._ordered = [beds[b] for b in sorted(beds)]
        return self._ordered

    def _sweep(self, now: float) -> None:
        """Staleness and technical alarms for one slice of the ward."""
        part, self._sweep_at = self._slice(self._sweep_at)
        stale_after = self.config.stale_after
        for state in part:
            stale = state.latest is not None and now - state.received_at > stale_after
            if stale != state.stale:
                state.stale = stale
                self._bed_changed(state.bed)
        for event in self.technical.check(part, now):
            assert self.journal is not None
            self.journal.record(event, now)
            entry = self.board.apply_event(event, source="station")
            self._technical_changed.append(entry)
            for observer in self.alarm_observers:
                observer(event, entry)

    def _refresh_bed_stats(self, budget: float = 0.004) -> None:
        """Recompute the statistics of the beds some dashboard asks for, round the ward,
        for at most ``budget`` seconds per tick: a bed's percentiles cost tens of
        microseconds, so a large ward's are refreshed every few seconds rather than all at
        once. Each is encoded once per refresh; a stats message joins them."""
        wanted = [c.stats_beds for c in self.hub.clients.values()
                  if c.stats_beds is None or c.stats_beds]
        if not wanted:
            return
        everyone = any(w is None for w in wanted)
        order = self._order()
        n = len(order)
        deadline = time.perf_counter() + budget
        for _ in range(n):
            state = order[self._stats_at % n]
            self._stats_at = (self._stats_at + 1) % n
            if not everyone and not any(state.bed in w for w in wanted):
                continue
            self._bed_stats_of(state)
            if time.perf_counter() > deadline:
                break

    def _bed_stats_of(self, state: BedState) -> tuple[int, dict, str]:
        """A bed's statistics and their encoding, refreshed if datagrams came since."""
        cached = self._bed_stats.get(state.bed)
        received = state.stats.received
        if cached is None or cached[0] != received:
            snap = state.stats.snapshot()
            cached = (received, snap, encode_part(snap))
            self._bed_stats[state.bed] = cached
        return cached

    def _every_second(self) -> None:
        """What is judged once a second and does not grow with the ward: silences, dashboards
        that stopped reading, the technical alarms the slices changed (one message), and the
        stats message."""
        now = self.clock.now()
        changed, self._technical_changed = self._technical_changed, []
        self._publish_group(changed)
        sounding, pauses_ended = self.board.expire(now)
        for entry in sounding:
            self._publish(entry)
        for bed in pauses_ended:
            self.hub.push_alarm({"type": "pause", "bed": bed, "until": None, "seconds": 0,
                                 "by": None})
        self.hub.drop_stalled()
        self.gc.ward_size(len(self.beds.beds))
        if self.hub.clients:
            self.hub.push_stats(self.stats_message)

    def _publish(self, entry: AlarmEntry) -> None:
        self.hub.push_alarm({"type": "alarm", "alarm": entry.to_json()})

    def _publish_group(self, entries: list[AlarmEntry]) -> None:
        """The technical alarms the station's own checks raised and cleared in one second (each
        bed is checked once a second, a slice of the ward per push tick), as one ``alarms``
        message carrying every entry.

        A ward that loses its network at once changes hundreds of entries in one check. As
        one message each, they would fill a dashboard's alarm queue (``client_alarm_queue``)
        in one go and close a dashboard that is reading perfectly well; as one message they
        take one place in it, and no entry is lost. Alarms from devices, acknowledgements,
        silences and their ends (each bounded by what people do) stay one ``alarm`` message
        each, as they happen."""
        if entries:
            self.hub.push_alarm({"type": "alarms", "alarms": [e.to_json() for e in entries]})

    def _on_alarm(self, event: AlarmMessage) -> None:
        entry = self.board.apply_event(event)
        self._publish(entry)
        for observer in self.alarm_observers:
            observer(event, entry)

    def _on_alarm_connection(self, bed: int, connected: bool) -> None:
        state = self.beds.beds.get(bed)
        if state is None:  # a provisioned device whose alarm link came before its telemetry
            device = self.beds.device_of(bed)
            state = self.beds.get(bed, device) if device is not None else None
        # a bed may have more than one alarm connection for a moment (a device reconnecting
        # before the station noticed its old one die): it is connected while any is open
        self._alarm_links[bed] += 1 if connected else -1
        if state is not None:
            state.alarm_connected = self._alarm_links[bed] > 0
            state.alarm_link_seen = True
            self._bed_changed(bed)

    def _replay_journal(self) -> None:
        """Rebuild all alarm state from the journal: the board (what a restarted station
        shows) and the technical alarms still raised, so that they clear when their
        condition ends, as if the station had never stopped."""
        assert self.journal is not None
        for row in self.journal.events():
            source = alarm_source(row["alarm_id"])
            event = _alarm_from_row(row)
            self.board.apply_event(event, source=source)
            if source == "station":
                self.technical.replay(event)
        for action in self.journal.actions():
            kind, _, arg = action["action"].partition(":")
            if kind == "pause" and action["alarm_id"].startswith("bed:"):
                self.board.pause_bed(int(action["alarm_id"][4:]), action["user"],
                                     action["at"], float(arg))
                continue
            if self.board.get(action["alarm_id"]) is None:
                continue
            try:
                if kind == "acknowledge":
                    self.board.acknowledge(action["alarm_id"], action["user"], action["at"])
                elif kind == "silence":
                    self.board.silence(action["alarm_id"], action["user"], action["at"],
                                       float(arg))
            except ValueError:
                continue  # e.g. a silence recorded after the alarm cleared
        self.board.expire(self.clock.now())

    def command(self, raw: str | bytes, client: DashboardClient | None = None,
                operator: Operator | None = None) -> dict | None:
        """A dashboard command. Raises ValueError with a readable reason when it is bad.

        With sessions, ``operator`` is the session's: an ack or a silence needs a nurse, and
        records the operator's name (a ``user`` field in the command is not believed)."""
        try:
            cmd = json.loads(raw, parse_constant=_not_json)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"command is not JSON: {exc}") from None
        except RecursionError:
            raise ValueError("command is nested too deeply to be a command") from None
        if not isinstance(cmd, dict) or not isinstance(cmd.get("type"), str):
            raise ValueError('a command is a JSON object with a "type", e.g. {"type": "ack", ...}')
        kind = cmd["type"]
        if kind in ("ack", "silence"):
            alarm_id = cmd.get("alarm_id")
            user = self._actor(kind, cmd, operator)
            if not isinstance(alarm_id, str) or not _utf8(alarm_id):
                raise ValueError(f'{kind} needs "alarm_id" (a string of printable text)')
            now = self.clock.now()
            entry = self.board.get(alarm_id)
            if entry is None:  # the id as sent, cut: an error is no echo of a megabyte
                shown = alarm_id if len(alarm_id) <= 80 else alarm_id[:80] + "…"
                raise ValueError(f"no alarm with id {shown!r} ({len(alarm_id)} characters)")
            if kind == "ack":
                action = "acknowledge"
            else:
                seconds = _seconds(cmd, "silence", low=1)
                if entry.state == "cleared":
                    raise ValueError(f"alarm {alarm_id!r} is already cleared; nothing to "
                                     "silence")
                action = f"silence:{float(seconds):g}"
            assert self.journal is not None
            # journal first: an action that cannot be stored is refused, never half applied
            self.journal.record_action(alarm_id, action, user, now)
            if kind == "ack":
                entry = self.board.acknowledge(alarm_id, user, now)
            else:
                entry = self.board.silence(alarm_id, user, now, float(seconds))
            self._publish(entry)
            return None
        if kind == "pause":
            user = self._actor(kind, cmd, operator)
            bed = cmd.get("bed")
            if isinstance(bed, bool) or not isinstance(bed, int) or bed not in self.beds.beds:
                raise ValueError(f'pause needs "bed": one of the beds {sorted(self.beds.beds)}'
                                 f", not {bed!r}"[:300])
            seconds = _seconds(cmd, "pause", low=0)
            now = self.clock.now()
            assert self.journal is not None
            self.journal.record_action(f"bed:{bed}", f"pause:{float(seconds):g}", user, now)
            until = self.board.pause_bed(bed, user, now, float(seconds))
            self.hub.push_alarm({"type": "pause", "bed": bed,
                                 "until": until if seconds > 0 else None,
                                 "seconds": float(seconds), "by": user})
            return None
        if kind == "news2":
            user = self._actor(kind, cmd, operator)
            bed = cmd.get("bed")
            if isinstance(bed, bool) or not isinstance(bed, int) or bed not in self.beds.beds:
                raise ValueError(f'news2 needs "bed": one of the beds {sorted(self.beds.beds)}'
                                 f", not {bed!r}"[:300])
            unknown = set(cmd) - {"v", "type", "bed", "supplemental_o2", "consciousness", "user"}
            if unknown:
                raise ValueError(f"news2: unknown fields {sorted(unknown)[:5]}; expected "
                                 '"supplemental_o2" (true/false) and/or "consciousness" '
                                 "(A, C, V, P or U)")
            self.observations.enter(bed, self.beds.beds[bed].latest, at=self.clock.now(),
                                    user=user, supplemental_o2=cmd.get("supplemental_o2"),
                                    consciousness=cmd.get("consciousness"))
            self._bed_changed(bed)
            return None
        if kind == "subscribe":
            if client is None:
                raise ValueError("subscribe is only for WebSocket clients")
            if not {"waves", "beds", "stats"} & cmd.keys():
                raise ValueError('subscribe needs "waves", "beds" and/or "stats": lists of bed '
                                 "numbers")
            waves = _bed_list(cmd, "waves", client.wave_beds)
            if len(waves) > 16:
                raise ValueError(f"subscribe to at most 16 beds' waveforms, not {len(waves)}")
            beds = cmd.get("beds", "unchanged")
            if beds is not None and beds != "unchanged":
                beds = _bed_list(cmd, "beds", frozenset())
            stats = cmd.get("stats", "unchanged")
            if stats is not None and stats != "unchanged":
                stats = _bed_list(cmd, "stats", frozenset())
            if stats != "unchanged":
                client.stats_beds = stats
            self.hub.subscribe_waves(client, waves)
            if beds != "unchanged":  # the new set of beds, in full
                self.hub.subscribe_vitals(client, beds, self.beds.beds)
            return {"type": "subscribed", "waves": sorted(client.wave_beds),
                    "beds": None if client.beds is None else sorted(client.beds),
                    "stats": None if client.stats_beds is None else sorted(client.stats_beds)}
        raise ValueError(f"unknown command type {kind!r}; known: ['ack', 'silence', 'pause', "
                         "'news2', 'subscribe']")

    def _actor(self, kind: str, cmd: dict, operator: Operator | None) -> str:
        """Who does ``kind``: with sessions the session's operator, who must be a nurse (a
        ``user`` field in the command is not believed); without, the command's ``user``."""
        user = cmd.get("user")
        if self.sessions is not None:
            if operator is None:
                raise ValueError(f"{kind} needs a logged-in operator (open the dashboard's "
                                 "token URL)")
            if not operator.may_act:
                self.sessions.refuse("role")
                verb = {"ack": "acknowledge", "silence": "silence", "pause": "pause the sound "
                        "of", "news2": "enter observations for"}[kind]
                raise ValueError(f"{operator.name} is a {operator.role}: only a nurse may "
                                 f"{verb} {'alarms' if kind in ('ack', 'silence') else 'a bed'}")
            user = operator.name
        if not isinstance(user, str) or not user.strip():
            raise ValueError(f'{kind} needs "user" (non-empty string)'
                             + (' and "alarm_id" (string)' if kind in ("ack", "silence") else ""))
        user = user.strip()[:64]
        if not user.isprintable() or not _utf8(user):
            raise ValueError(f'{kind}: "user" must be printable text (no control characters '
                             "or lone surrogates)")
        return user

    # -- views -----------------------------------------------------------------------------

    def bed_summary(self, bed: int) -> dict:
        """The bed's summary (server/beds.py) and what the station adds from admission and
        charting: the patient's name, the scenario (the instructor's view shows it), the
        NEWS2 of the latest observation set, and when the latest cuff reading was taken
        (wall clock) with the cuff's mode."""
        nibp_at, nibp_mode = self.observations.nibp(bed)
        return {**self.beds.beds[bed].summary(), "patient": self.patients.get(bed),
                "scenario": self.scenarios.get(bed), "news2": self.observations.latest(bed),
                "nibp_at": nibp_at, "nibp_mode": nibp_mode}

    def bed_summaries(self) -> list[dict]:
        return [self.bed_summary(b) for b in sorted(self.beds.beds)]

    def bed_encoded(self, bed: int) -> str:
        """One bed's summary as JSON, encoded once per change of what it shows and shared by
        every vitals message that carries it, whichever dashboard it goes to.

        A datagram changes only the readings; the rest (the bed's identity and link, the
        patient, the NEWS2 set, the cuff) changes a few times an hour. So the summary is joined
        from the rest as encoded at its last change and the readings encoded by hand
        (:meth:`BedState.readings_json`): a few microseconds, where ``json.dumps`` of the whole
        summary took tens, for every bed every second. What was encoded is kept in one
        :class:`BedEncoding` per bed, changed in place."""
        state = self.beds.beds[bed]
        latest = state.latest
        frame = (state.device_id, state.alarm_connected, state.stale, self.patients.get(bed),
                 self.scenarios.get(bed), self.observations.version(bed),
                 self.observations.nibp(bed))
        enc = self._encoded.get(bed)
        if enc is None:
            enc = self._encoded[bed] = BedEncoding()
        elif enc.text and enc.latest is latest and enc.received_at == state.received_at \
                and enc.frame == frame:
            return enc.text
        if latest is None:
            text = encode_part(self.bed_summary(bed))
        else:
            if enc.frame != frame or not enc.head:
                enc.frame = frame
                enc.head, enc.tail = self._frame_json(bed)
            text = enc.head + state.readings_json() + enc.tail
        enc.latest, enc.received_at, enc.text = latest, state.received_at, text
        return text

    def _frame_json(self, bed: int) -> tuple[str, str]:
        """What comes before and after a bed's readings in its encoded summary: the members of
        :meth:`bed_summary` that datagrams do not change, encoded as :func:`encode_part` does."""
        summary = self.bed_summary(bed)
        readings = BedState.READING_KEYS
        head = encode_part({k: v for k, v in summary.items() if k in BedState.HEAD_KEYS})
        tail = encode_part({k: v for k, v in summary.items()
                            if k not in readings and k not in BedState.HEAD_KEYS})
        return head[:-1] + ",", "," + tail[1:]

    def bed_text(self, bed: int) -> str:
        """One bed's summary as encoded at its last change (the hub joins these into vitals
        messages for every dashboard): a lookup, as the flush already encoded what changed."""
        enc = self._encoded.get(bed)
        return enc.text if enc is not None and enc.text else self.bed_encoded(bed)

    def snapshot(self) -> dict:
        """What a dashboard gets first. Its statistics are the beds' as last refreshed (a
        dashboard connecting never makes the station compute a whole ward's at once); the
        stats messages that follow fill in the rest."""
        return {"beds": self.bed_summaries(), **self.snapshot_parts()}

    def snapshot_message(self) -> str:
        """:meth:`snapshot` encoded, with each bed's summary as encoded at its last change:
        a dashboard connecting to a ward of thousands costs a join, not thousands of
        encodings (only beds that changed while no dashboard was connected are encoded)."""
        snap = self.snapshot_parts()
        return (encode({"type": "snapshot"})[:-1]
                + ',"beds":[' + ",".join(self.bed_text(b) for b in sorted(self.beds.beds))
                + '],"alarms":' + encode_part(snap["alarms"])
                + ',"pauses":' + encode_part(snap["pauses"])
                + ',"stats":' + encode_part(snap["stats"]) + "}")

    def snapshot_parts(self) -> dict:
        """The snapshot's alarms and statistics (its beds are joined from their encodings)."""
        return {"alarms": [e.to_json() for e in self.board.entries()],
                "pauses": self.board.pauses_json(self.clock.now()),
                "stats": {**self.totals(),
                          "beds": {str(b): c[1] for b, c in sorted(self._bed_stats.items())}}}

    def totals(self) -> dict:
        """The station's own counters: each protocol's, and the event loop's lag."""
        udp = self.ingest.counters()
        if self._udp is not None:
            udp["receive_buffer"] = self._udp.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        return {
            "udp": udp,
            "tcp": self.alarm_listener.counters() if self.alarm_listener else {},
            "websocket": self.hub.counters(),
            "loop": {**self.loop_lag.counters(), "gc": self.gc.counters()},
            **({} if self.hl7 is None else {"hl7": self.hl7.stats()}),
            **({} if self.sessions is None else {"sessions": {
                "refused": dict(self.sessions.refused)}}),
        }

    def stats(self) -> dict:
        """``/api/stats``: the totals and every bed's statistics (refreshed for beds that
        received since they were last computed)."""
        return {**self.totals(),
                "beds": {str(b): self._bed_stats_of(s)[1]
                         for b, s in sorted(self.beds.beds.items())}}

    def stats_message(self, beds: frozenset[int] | None) -> str:
        """A stats message with the statistics of ``beds`` (None: every bed), joined from
        each bed's encoding as last refreshed (at most a few seconds old in a large ward)."""
        head = encode({"type": "stats", **self.totals(), "beds": {}})[:-2]
        parts = self._bed_stats
        chosen = sorted(parts) if beds is None else sorted(b for b in beds if b in parts)
        return head + ",".join(f'"{b}":{parts[b][2]}' for b in chosen) + "}}"


class BedEncoding:
    """One bed's summary as last encoded (Station.bed_encoded), and what it was encoded from:
    one object per bed, changed in place, since a new container for every datagram is one more
    object for the garbage collector to walk for every bed every second."""

    __slots__ = ("latest", "received_at", "frame", "head", "tail", "text")

    def __init__(self) -> None:
        self.latest: object = None
        self.received_at = 0.0
        self.frame: tuple | None = None
        self.head = self.tail = self.text = ""  # "" : not encoded yet, or out of date


def _not_json(token: str) -> None:
    raise ValueError(f"{token} is not JSON")


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _seconds(cmd: dict, kind: str, *, low: float) -> float:
    seconds = cmd.get("seconds", 120)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) \
            or not low <= seconds <= 600:
        raise ValueError(f"{kind} seconds={seconds!r}; expected {low:g}..600")
    return seconds


def _bed_list(cmd: dict, key: str, default: frozenset[int]) -> frozenset[int]:
    value = cmd.get(key)
    if key not in cmd:
        return default
    if not isinstance(value, list) or len(value) > 4096 or not all(
            isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 2**16 for b in value):
        raise ValueError(f'subscribe "{key}" must be a list of bed numbers, e.g. [1, 3]'
                         + (" (or null for every bed)" if key in ("beds", "stats") else ""))
    return frozenset(value)


def _alarm_from_row(row: dict) -> AlarmMessage:
    return AlarmMessage(row["alarm_id"], row["device_id"], row["bed"], row["condition"],
                        row["priority"], row["state"], row["value"], row["limit_value"],
                        row["timestamp"])
