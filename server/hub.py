"""The WebSocket hub: a snapshot on connect, then coalesced updates; alarms always get through.

Each dashboard has its own small outbox and its own sender task, so one slow dashboard never holds
up the others:

- vitals, waves and stats are *coalesced*: once per tick (``push_hz``, default 10 Hz) the hub
  offers each client what changed. Waves (per bed, only to dashboards subscribed to that bed)
  and stats are one message per kind, encoded once for every client; a client that has not sent
  the previous one of the same kind yet has it replaced: latest wins, and the replaced one is
  counted as dropped (for waves, the dashboard draws the gap). Vitals are owed per bed: a client
  keeps the set of beds whose newest values it has not been sent yet, and its next vitals
  message carries exactly those, built when it is sent from each bed's summary (encoded once
  per change, by the station). A slow client gets fewer, larger messages, and never one with
  every bed because it missed one;
- alarm messages are queued, never dropped. A client that falls more than ``max_alarm_queue``
  alarms behind is disconnected with a close reason; it resyncs from a snapshot when it reconnects.

``StationConfig(coalesce=False)`` switches to the naive design instead, kept so that the capacity
benchmark (``python -m bench``) can measure it against this one with the same code: one
message per datagram per client, encoded for each client, queued first in, first out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
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
    """One connected dashboard: the beds whose vitals it is owed, its other pending messages
    (latest wins), its alarms (FIFO) and counters."""

    def __init__(self, socket: Socket, *, max_alarm_queue: int,
                 vitals_message: Callable[[Iterable[int]], str],
                 on_gone: Callable[[Socket], None] | None = None,
                 stall_after: float = 1.0) -> None:
        self.socket = socket
        self.stall_after = stall_after
        self.on_gone = on_gone  # the hub forgets a client the station closed
        self.max_alarm_queue = max_alarm_queue
        self.vitals_message = vitals_message  # the newest vitals of these beds, encoded
        self.beds: frozenset[int] | None = None  # the beds whose vitals it wants (None: all)
        self.owed: set[int] = set()  # beds whose newest vitals it has not been sent yet
        # kind ("vitals", "stats", "wave:3") -> message, oldest kind first; the vitals message
        # is built when it is sent (None here), from the beds owed by then
        self.latest: dict[str, str | None] = {}
        # alarm messages (and command replies), first in, first out, none ever dropped
        self.alarms: deque[str] = deque()
        self.stream: deque[str] = deque()  # the naive design's messages, one per datagram
        self.wave_beds: frozenset[int] = frozenset()
        self.sent = 0
        self.bytes = 0
        self.dropped_vitals = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.closed = False
        self.failed: str | None = None  # why the station closed it, if it did
        self.writing_since: float | None = None  # when the write under way began

    def start(self, first: str) -> None:
        self.alarms.append(first)  # the snapshot goes first and is never dropped
        self._wake.set()
        self._task = asyncio.create_task(self._run())

    def offer_latest(self, kind: str, message: str | None) -> None:
        """Queue a replaceable message: a newer one of the same kind replaces it."""
        if kind in self.latest:
            self.dropped_vitals += 1
            del self.latest[kind]  # re-inserted at the end: oldest kinds go first
        self.latest[kind] = message
        self._wake.set()

    def offer_vitals(self, beds: Iterable[int]) -> None:
        """These beds have new vitals. A vitals message still waiting to be sent is replaced by
        one that carries its beds as well as these (counted as dropped, as any replacement)."""
        self.owed.update(beds)
        self.offer_latest("vitals", None)

    def offer_stream(self, message: str, limit: int = 10_000) -> None:
        """Queue a message of the naive design (coalesce=False): first in, first out, none
        replaced by a newer one. Bounded so that a saturated station runs out of time, not
        memory: past ``limit`` the oldest is dropped and counted."""
        if len(self.stream) >= limit:
            self.stream.popleft()
            self.dropped_vitals += 1
        self.stream.append(message)
        self._wake.set()

    def stalled(self) -> bool:
        """Stopped reading: a write has been under way for ``stall_after`` seconds, or four
        full queues wait. A dashboard that keeps reading is never dropped for one burst of alarms
        (a ward losing its network at once): it is *behind* only if it also stopped."""
        if len(self.alarms) >= 4 * self.max_alarm_queue:
            return True
        since = self.writing_since
        return since is not None and asyncio.get_running_loop().time() - since > self.stall_after


    def offer_alarm(self, message: str) -> bool:
        """Queue an alarm message (or a command's reply); False if this client is too far
        behind (it must go): its queue is full *and* it stopped reading."""
        if len(self.alarms) >= self.max_alarm_queue and self.stalled():
            return False
        self.alarms.append(message)
        self._wake.set()
        return True

    async def _run(self) -> None:
        try:
            while not self.closed:
                await self._wake.wait()
                self._wake.clear()
                while self.alarms or self.stream or self.latest:
                    if self.alarms:
                        message = self.alarms.popleft()
                    elif self.stream:
                        message = self.stream.popleft()
                    else:
                        pending = self.latest.pop(next(iter(self.latest)))
                        if pending is None:  # vitals: the newest values of the beds owed
                            owed, self.owed = self.owed, set()
                            pending = self.vitals_message(sorted(owed))
                        message = pending
                    self.writing_since = asyncio.get_running_loop().time()
                    await self.socket.write_message(message)
                    self.writing_since = None
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
        self.failed = reason
        with contextlib.suppress(Exception):
            self.socket.close(CLOSE_INTERNAL, reason[:120])
        if self.on_gone is not None:
            self.on_gone(self.socket)

    async def stop(self) -> None:
        self.closed = True
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

    def __init__(self, snapshot: Callable[[], dict], *, bed_encoded: Callable[[int], str],
                 max_alarm_queue: int = 256, stall_after: float = 1.0) -> None:
        self.stall_after = stall_after
        self.snapshot = snapshot
        # one bed's newest summary, already encoded (the station encodes it once per change):
        # a vitals message, for any client and any set of beds, is then a join
        self.bed_encoded = bed_encoded
        self.max_alarm_queue = max_alarm_queue
        self.clients: dict[Socket, DashboardClient] = {}
        self.disconnected_slow = 0
        self._gone = {"sent": 0, "bytes": 0, "dropped_vitals": 0}  # of clients that left

    def add(self, socket: Socket) -> DashboardClient:
        client = DashboardClient(socket, max_alarm_queue=self.max_alarm_queue,
                                 vitals_message=self.vitals_of, on_gone=self.discard,
                                 stall_after=self.stall_after)
        self.clients[socket] = client
        try:
            first = encode({"type": "snapshot", **self.snapshot()})
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
            if client._task is not None:
                client._task.cancel()

    def _retire(self, client: DashboardClient) -> None:
        for key in self._gone:
            self._gone[key] += getattr(client, key)

    def push_vitals(self, beds: Iterable[int]) -> None:
        """The beds whose vitals changed this tick, owed to each client that wants them."""
        changed = frozenset(beds)
        for client in self.clients.values():
            wanted = changed if client.beds is None else changed & client.beds
            if wanted:
                client.offer_vitals(wanted)

    def subscribe_vitals(self, client: DashboardClient, beds: frozenset[int] | None,
                         known: Iterable[int]) -> None:
        """A client's new set of beds (None: all). It is owed every one of them the station
        has heard (``known``), at once: the new set, in full."""
        client.beds = beds
        client.owed.clear()
        client.offer_vitals(b for b in known if beds is None or b in beds)

    def vitals_of(self, beds: Iterable[int]) -> str:
        """A vitals message with the newest summary of each of these beds."""
        return vitals_message(self.bed_encoded(bed) for bed in beds)

    def push_latest(self, kind: str, message: dict, *, bed: int | None = None) -> None:
        """Send a replaceable message to every client (or, with ``bed``, to the clients
        subscribed to that bed's waveforms). Encoded once, whatever the number of clients."""
        text: str | None = None
        for client in self.clients.values():
            if bed is not None and bed not in client.wave_beds:
                continue
            if text is None:
                text = encode(message)
            client.offer_latest(kind, text)

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
        return any(bed in c.wave_beds for c in self.clients.values())

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

    async def close(self) -> None:
        for socket in list(self.clients):
            socket.close(1001, "station shutting down")
            await self.remove(socket)

    def counters(self) -> dict:
        live = list(self.clients.values())
        return {
            "clients": len(live),
            **{key: gone + sum(getattr(c, key) for c in live) for key, gone in self._gone.items()},
            "disconnected_slow": self.disconnected_slow,
        }
