"""The WebSocket hub: a snapshot on connect, then each change at once while a dashboard keeps
up, coalesced when it falls behind; alarms always get through.

Each dashboard has its own small outbox and its own sender task, so one slow dashboard never
holds up the others. What it is sent:

- alarm messages (and command replies) are queued first in, first out, never dropped. A client
  that falls more than ``max_alarm_queue`` alarms behind, and stopped reading, is disconnected
  with a close reason; it resyncs from a snapshot when it reconnects;
- *updates* (vitals, waves and stats) are pending per kind: vitals are owed per bed (the set of
  beds whose newest values the dashboard has not been sent; the message is built when it is
  sent, from each bed's summary encoded once per change by the station), a wave message per
  subscribed bed, one stats message. A newer message of a kind replaces a pending one (latest
  wins; counted in ``superseded``; for waves, the dashboard draws the gap). A slow dashboard
  gets fewer, larger messages, and never one with every bed because it missed one.

*When* updates go is the push policy, per dashboard, in two regimes:

- **at once** while the dashboard keeps up: no write to it is under way and it is within its
  rate budget (``push_budget`` messages a second on average, ``push_burst`` back to back). The
  station hands the hub each burst of changes as soon as it has taken it in, so a change reaches
  an idle dashboard in the same turn of the event loop, not at a tick;
- **coalesced** once the dashboard falls behind (a change came while a write to it was still
  under way) or spends its budget: latest wins per bed, and what changed goes in one message.
  For a dashboard that fell behind, that message goes as soon as the write under way has
  finished (it has caught up: its socket is empty again); for one over budget, at the hub's
  next tick (``push_hz``) or as soon as its budget has room for one more message
  (``1/push_budget`` seconds at most). Either way it then returns to sending at once if its
  budget has room. (Holding a caught-up dashboard's updates until a tick cost every reading
  that came during a write up to ``1/push_hz`` seconds: with ten dashboards of 4,000 beds the
  median was 40-90 ms, where sending on completion gives about 4 ms.)

``StationConfig(coalesce=False)`` switches to the naive design instead, kept so that the capacity
benchmark (``python -m bench``) can measure it against this one with the same code: one
message per datagram per client, encoded for each client, queued first in, first out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Protocol

log = logging.getLogger("server.hub")

SCHEMA_VERSION = 1
CLOSE_TOO_SLOW = 4000
CLOSE_INTERNAL = 1011  # RFC 6455: the server met a condition that kept it from serving


class Socket(Protocol):
    def write_message(self, message: str) -> asyncio.Future: ...
    def close(self, code: int | None = None, reason: str | None = None) -> None: ...


class DashboardClient:
    """One connected dashboard: the beds whose vitals it is owed, its other pending updates
    (latest wins), its alarms (FIFO), its push regime and counters."""

    def __init__(self, socket: Socket, *, max_alarm_queue: int,
                 vitals_message: Callable[[Iterable[int]], str],
                 on_gone: Callable[[Socket], None] | None = None,
                 stall_after: float = 1.0, budget: float = 200.0, burst: int = 20,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.socket = socket
        self.stall_after = stall_after
        self.on_gone = on_gone  # the hub forgets a client the station closed
        self.max_alarm_queue = max_alarm_queue
        self.vitals_message = vitals_message  # the newest vitals of these beds, encoded
        self.beds: frozenset[int] | None = None  # the beds whose vitals it wants (None: all)
        self.stats_beds: frozenset[int] | None = None  # whose statistics it wants (None: all)
        self.owed: set[int] = set()  # beds whose newest vitals it has not been sent yet
        # kind ("vitals", "stats", "wave:3") -> message, oldest kind first; the vitals message
        # is built when it is sent (None here), from the beds owed by then
        self.pending: dict[str, str | None] = {}
        # alarm messages (and command replies), first in, first out, none ever dropped
        self.alarms: deque[str] = deque()
        self.stream: deque[str] = deque()  # the naive design's messages, one per datagram
        self.wave_beds: frozenset[int] = frozenset()
        self.sent = 0
        self.bytes = 0
        self.superseded = 0  # pending updates replaced by a newer one before they were sent
        self.sent_at_once = 0  # update messages sent as soon as their change came
        self.sent_coalesced = 0  # update messages that waited (for a write, a tick or the budget)
        # the push policy: a token bucket of `burst` messages, refilled at `budget` a second
        self.budget = budget
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self._refilled_at = clock()
        # "at once", "behind" (updates wait for a tick) or "over budget" (they wait for a tick
        # or for the budget to have room, whichever comes first)
        self.regime = "at once"
        self._tick_due = False  # the tick let this dashboard's owed updates through
        self._waited = False  # what is pending now has waited: it goes as coalesced
        self._refill_timer: asyncio.TimerHandle | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._write: asyncio.Future | None = None  # the write under way, if any
        self.closed = False
        self.failed: str | None = None  # why the station closed it, if it did
        self.writing_since: float | None = None  # when the write under way began

    def start(self, first: str) -> None:
        self.alarms.append(first)  # the snapshot goes first and is never dropped
        self._wake.set()
        self._task = asyncio.create_task(self._run())

    @property
    def coalescing(self) -> bool:
        """Behind or over budget: updates wait and are merged, latest wins."""
        return self.regime != "at once"

    @property
    def behind(self) -> bool:
        """A write to this dashboard has not finished: its socket (Tornado's buffer) is not
        empty, so anything new would only queue behind it."""
        return self._write is not None and not self._write.done()

    def offer_pending(self, kind: str, message: str | None) -> None:
        """Queue a replaceable update: a newer one of the same kind replaces it."""
        if kind in self.pending:
            self.superseded += 1
            del self.pending[kind]  # re-inserted at the end: oldest kinds go first
        self.pending[kind] = message
        if self.behind:  # it fell behind: from now on, until a tick finds it caught up, ticks
            self.regime = "behind"
            self._waited = True
        if not self.coalescing:
            self._wake.set()

    def offer_vitals(self, beds: Iterable[int]) -> None:
        """These beds have new vitals. A vitals message still waiting to be sent is replaced by
        one that carries its beds as well as these (counted as superseded, as any replacement)."""
        self.owed.update(beds)
        self.offer_pending("vitals", None)

    def offer_stream(self, message: str, limit: int = 10_000) -> None:
        """Queue a message of the naive design (coalesce=False): first in, first out, none
        replaced by a newer one. Bounded so that a saturated station runs out of time, not
        memory: past ``limit`` the oldest is dropped and counted (as superseded)."""
        if len(self.stream) >= limit:
            self.stream.popleft()
            self.superseded += 1
        self.stream.append(message)
        self._wake.set()

    def stalled(self) -> bool:
        """Stopped reading: a write has been under way for ``stall_after`` seconds, or four
        full queues wait. A dashboard that keeps reading is never dropped for one burst of alarms
        (a ward losing its network at once): it is *behind* only if it also stopped."""
        if len(self.alarms) >= 4 * self.max_alarm_queue:
            return True
        since = self.writing_since  # time.monotonic(): asked from /api/stats too, off the loop
        return since is not None and time.monotonic() - since > self.stall_after

    def offer_alarm(self, message: str) -> bool:
        """Queue an alarm message (or a command's reply); False if this client is too far
        behind (it must go): its queue is full *and* it stopped reading."""
        if len(self.alarms) >= self.max_alarm_queue and self.stalled():
            return False
        self.alarms.append(message)
        self._wake.set()
        return True

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self._refilled_at) * self.budget)
        self._refilled_at = now

    def tick(self) -> None:
        """The hub's coalescing tick, and what a dashboard that fell behind does as soon as its
        write finishes: once caught up (no write under way), it is sent what it is owed, and
        goes back to sending at once if its budget has room again."""
        if not self.coalescing or self.behind:
            return
        self._refill()
        self.regime = "at once" if self.tokens >= 1.0 else "over budget"
        if self.pending:
            self._tick_due = True  # whatever the budget: the tick is the coalesced regime's
            self._wake.set()

    def _wake_when_refilled(self) -> None:
        """Over budget: wake the sender when the budget has room for one more message."""
        if self._refill_timer is None or self._refill_timer.cancelled():
            delay = max((1.0 - self.tokens) / self.budget, 0.0)
            self._refill_timer = asyncio.get_running_loop().call_later(delay, self._refilled)

    def _refilled(self) -> None:
        self._refill_timer = None
        self._refill()
        if self.regime == "over budget" and self.tokens >= 1.0 and not self.pending:
            self.regime = "at once"  # nothing waited for the room: the next change goes at once
        if self.pending:
            self._wake.set()

    def _next_update(self) -> str | None:
        """The next pending update, if the push policy lets it go now."""
        self._refill()
        if self.regime == "over budget" and self.tokens >= 1.0:
            self.regime = "at once"  # its budget has room again
        if self.regime == "at once":
            if self.tokens >= 1.0:
                self.tokens -= 1.0
            else:  # past its budget: coalesce until the budget has room, or a tick
                self.regime = "over budget"
                self._waited = True
                self._wake_when_refilled()
        if self.regime != "at once":
            if not self._tick_due:
                return None
            self._waited = True
        if self._waited:
            self.sent_coalesced += 1
        else:
            self.sent_at_once += 1
        kind = next(iter(self.pending))
        message = self.pending.pop(kind)
        if not self.pending:
            self._tick_due = self._waited = False
        if message is None:  # vitals: the newest values of the beds owed
            owed, self.owed = self.owed, set()
            message = self.vitals_message(sorted(owed))
        return message

    async def _run(self) -> None:
        try:
            while not self.closed:
                await self._wake.wait()
                self._wake.clear()
                while True:
                    if self.alarms:
                        message: str | None = self.alarms.popleft()
                    elif self.stream:
                        message = self.stream.popleft()
                    elif self.pending:
                        message = self._next_update()
                    else:
                        message = None
                    if message is None:
                        break
                    self.writing_since = time.monotonic()
                    self._write = self.socket.write_message(message)
                    await self._write
                    self.writing_since = None
                    if self.regime == "behind":
                        self.tick()  # caught up: what it is owed goes now, not at the tick
                    self.sent += 1
                    self.bytes += len(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self.closed or _socket_gone(exc):  # the dashboard left: nothing to tell it
                log.debug("dashboard sender ended: %r", exc)
                return
            # anything else (a message that cannot be encoded, a failed write): never leave
            # the dashboard open and silent. Close it with a code and a reason, so that it
            # reconnects and resyncs from a snapshot; the other dashboards carry on
            self.fail(f"station could not send to this dashboard ({type(exc).__name__}); "
                      "reconnect to resync", exc)

    def fail(self, reason: str, exc: BaseException | None = None) -> None:
        """Close this dashboard with 1011 and ``reason``, logged at ERROR."""
        log.error("closing a dashboard: %s", reason, exc_info=exc)
        self.closed = True
        self._cancel_timer()
        self.failed = reason
        with contextlib.suppress(Exception):
            self.socket.close(CLOSE_INTERNAL, reason[:120])
        if self.on_gone is not None:
            self.on_gone(self.socket)

    def _cancel_timer(self) -> None:
        if self._refill_timer is not None:
            self._refill_timer.cancel()
            self._refill_timer = None

    async def stop(self) -> None:
        self.closed = True
        self._cancel_timer()
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _socket_gone(exc: BaseException) -> bool:
    """Is this the error of writing to a dashboard that has gone away?"""
    from tornado.iostream import StreamClosedError
    from tornado.websocket import WebSocketClosedError
    return isinstance(exc, WebSocketClosedError | StreamClosedError | ConnectionError)


def _not_json(value: object) -> object:
    """json's fallback for an object it has no encoding for: refuse, never ``str()`` it (a
    text nobody asked for on the wire is a bug hidden), as the same ValueError as a NaN, so
    that every caller's handling of an unencodable message covers both."""
    raise ValueError(f"a {type(value).__name__} is not JSON: {str(value)[:80]!r}")


def encode(message: dict) -> str:
    """Strict JSON: a NaN, an infinity or an object JSON has no type for raises ValueError
    rather than become a text that a browser's JSON.parse refuses (or that no schema names)."""
    return json.dumps({"v": SCHEMA_VERSION, **message}, separators=(",", ":"), allow_nan=False,
                      default=_not_json)


def encode_part(value: object) -> str:
    """A part of a message (a bed summary), encoded exactly as :func:`encode` encodes it
    inside a message, so that parts encoded once can be joined into many messages."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False, default=_not_json)


_VITALS_HEAD = encode({"type": "vitals", "beds": []})[:-2]  # '{"v":1,"type":"vitals","beds":['


def vitals_message(beds: Iterable[str]) -> str:
    """``encode({"type": "vitals", "beds": [...]})`` from bed summaries already encoded."""
    return _VITALS_HEAD + ",".join(beds) + "]}"


class Hub:
    """All dashboards of one station."""

    COUNTED = ("sent", "bytes", "superseded", "sent_at_once", "sent_coalesced")

    def __init__(self, snapshot: Callable[[], dict], *, bed_encoded: Callable[[int], str],
                 snapshot_message: Callable[[], str] | None = None,
                 max_alarm_queue: int = 256, stall_after: float = 1.0,
                 push_budget: float = 200.0, push_burst: int = 20,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_after = stall_after
        self.snapshot = snapshot
        # the snapshot already encoded (the station joins each bed's encoding): else encoded here
        self.snapshot_message = snapshot_message
        # one bed's newest summary, already encoded (the station encodes it once per change):
        # a vitals message, for any client and any set of beds, is then a join
        self.bed_encoded = bed_encoded
        self.max_alarm_queue = max_alarm_queue
        self.push_budget = push_budget
        self.push_burst = push_burst
        self.clock = clock
        self.clients: dict[Socket, DashboardClient] = {}
        self.disconnected_slow = 0
        self._gone = dict.fromkeys(self.COUNTED, 0)  # of clients that left
        self._wave_beds: Counter[int] = Counter()  # bed -> clients subscribed to its waves
        # vitals messages built since the beds last changed (push_vitals), by the beds they
        # carry: the dashboards that catch up together (ten of a ward of thousands, say) are
        # usually owed the same beds, and each built its own 4 MB message in the same turn of
        # the loop. Forgotten at every change, tick, connection and subscription
        self._vitals_built: dict[tuple[int, ...], str] = {}

    def add(self, socket: Socket) -> DashboardClient:
        client = DashboardClient(socket, max_alarm_queue=self.max_alarm_queue,
                                 vitals_message=self.vitals_of, on_gone=self.discard,
                                 stall_after=self.stall_after, budget=self.push_budget,
                                 burst=self.push_burst, clock=self.clock)
        self.clients[socket] = client
        self._vitals_built.clear()  # built while no one listened, the beds may have changed
        try:
            first = self.snapshot_message() if self.snapshot_message is not None \
                else encode({"type": "snapshot", **self.snapshot()})
        except Exception as exc:  # never a dashboard left open without its snapshot
            client.fail("station could not build the snapshot; try again", exc)
            return client
        client.start(first)
        return client

    async def remove(self, socket: Socket) -> None:
        client = self.clients.pop(socket, None)
        if client is not None:
            self._retire(client)
            await client.stop()

    def discard(self, socket: Socket) -> None:
        """Forget a closed socket now (from a close callback, which cannot await)."""
        client = self.clients.pop(socket, None)
        if client is not None:
            self._retire(client)
            client.closed = True
            client._cancel_timer()
            if client._task is not None:
                client._task.cancel()

    def _retire(self, client: DashboardClient) -> None:
        for key in self._gone:
            self._gone[key] += getattr(client, key)
        self._wave_beds.subtract(client.wave_beds)
        client.wave_beds = frozenset()

    def tick(self) -> None:
        """The coalescing tick (``push_hz``): dashboards that fell behind or spent their budget
        get what they are owed, if they have caught up."""
        self._vitals_built.clear()
        for client in self.clients.values():
            client.tick()

    def push_vitals(self, beds: Iterable[int]) -> None:
        """These beds' vitals changed: owed to each client that wants them (sent at once to
        a client that keeps up; to one that fell behind, once its write finishes; to one over
        budget, at the tick or when its budget has room)."""
        changed = frozenset(beds)
        self._vitals_built.clear()  # the beds' encodings changed
        for client in self.clients.values():
            wanted = changed if client.beds is None else changed & client.beds
            if wanted:
                client.offer_vitals(wanted)

    def subscribe_vitals(self, client: DashboardClient, beds: frozenset[int] | None,
                         known: Iterable[int]) -> None:
        """A client's new set of beds (None: all). It is owed every one of them the station
        has heard (``known``), at once: the new set, in full."""
        self._vitals_built.clear()
        client.beds = beds
        client.owed.clear()
        client.offer_vitals(b for b in known if beds is None or b in beds)

    def subscribe_waves(self, client: DashboardClient, beds: frozenset[int]) -> None:
        """A client's new set of beds whose waveforms it wants (the hub counts, per bed, the
        clients that want its waves, so that the station asks in O(1) per chunk)."""
        self._wave_beds.subtract(client.wave_beds)
        self._wave_beds.update(beds)
        client.wave_beds = beds

    def vitals_of(self, beds: Iterable[int]) -> str:
        """A vitals message with the newest summary of each of these beds: built once for every
        dashboard owed the same beds until they change again."""
        key = tuple(beds)
        text = self._vitals_built.get(key)
        if text is None:
            text = self._vitals_built[key] = vitals_message(self.bed_encoded(b) for b in key)
        return text

    def push_replaceable(self, kind: str, message: dict, *, bed: int | None = None) -> None:
        """Send a replaceable update to every client (or, with ``bed``, to the clients
        subscribed to that bed's waveforms). Encoded once, whatever the number of clients."""
        text: str | None = None
        for client in self.clients.values():
            if bed is not None and bed not in client.wave_beds:
                continue
            if text is None:
                text = encode(message)
            client.offer_pending(kind, text)

    def push_stats(self, message_for: Callable[[frozenset[int] | None], str]) -> None:
        """A stats message to every client, with the statistics of the beds it asked for
        (``stats_beds``): built once per distinct set asked for, by ``message_for``."""
        made: dict[frozenset[int] | None, str] = {}
        for client in self.clients.values():
            key = client.stats_beds
            if key not in made:
                made[key] = message_for(key)
            client.offer_pending("stats", made[key])

    def push_each(self, message: dict, *, bed: int, wave: bool) -> None:
        """The naive design (coalesce=False): one message per datagram, encoded again for
        every client that wants it (the bed's waves, or its vitals), queued behind the others."""
        for client in self.clients.values():
            if wave and bed not in client.wave_beds:
                continue
            if not wave and client.beds is not None and bed not in client.beds:
                continue
            client.offer_stream(encode(message))

    def wants_waves(self, bed: int) -> bool:
        """Does any dashboard want this bed's waveforms? (Asked for every chunk: dict.get, as a
        Counter's own lookup of a missing bed costs a Python call.)"""
        return self._wave_beds.get(bed, 0) > 0

    def push_alarm(self, message: dict) -> None:
        try:
            text = encode(message)
        except ValueError as exc:
            # an alarm no dashboard can be sent: each must resync from a snapshot rather
            # than miss it without knowing
            log.error("an alarm message cannot be encoded: %s", exc)
            for client in list(self.clients.values()):
                client.fail("station could not encode an alarm; reconnect to resync")
            return
        for socket, client in list(self.clients.items()):
            if not client.offer_alarm(text):
                self._too_slow(socket, client)

    def drop_stalled(self) -> None:
        """Close the dashboards whose alarm queue is full and that stopped reading (the
        station calls this every second: a burst offers nothing more to judge them by)."""
        for socket, client in list(self.clients.items()):
            if len(client.alarms) >= client.max_alarm_queue and client.stalled():
                self._too_slow(socket, client)

    def _too_slow(self, socket: Socket, client: DashboardClient) -> None:
        self.disconnected_slow += 1
        log.warning("dashboard too far behind on alarms; disconnecting it")
        socket.close(CLOSE_TOO_SLOW, "too far behind on alarms; reconnect to resync")
        self.clients.pop(socket, None)
        self._retire(client)
        client.closed = True
        client._cancel_timer()

    async def close(self) -> None:
        for socket in list(self.clients):
            socket.close(1001, "station shutting down")
            await self.remove(socket)

    def counters(self) -> dict:
        live = list(self.clients.values())
        return {
            "clients": len(live),
            **{key: gone + sum(getattr(c, key) for c in live) for key, gone in self._gone.items()},
            "coalescing": sum(c.coalescing for c in live),
            # stopped reading: a write under way for stall_after seconds (see stalled())
            "stalled": sum(c.stalled() for c in live),
            "disconnected_slow": self.disconnected_slow,
        }
