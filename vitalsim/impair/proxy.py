"""The impairment proxies: asyncio glue around the decisions in :mod:`.model`.

Put one between the ward and the station: the devices send to the proxy's port, the proxy
forwards to the station's, doing to the traffic what its settings say. Both run on an already
running event loop (a notebook's included): ``await proxy.start()``, ``await proxy.stop()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from .model import TcpSettings, UdpImpairer, UdpSettings

log = logging.getLogger("vitalsim.impair")
#: SO_RCVBUF asked for on the proxy's listening socket, as the station asks for its own
RECEIVE_BUFFER = 4 << 20


class _Inbound(asyncio.DatagramProtocol):
    def __init__(self, proxy: UdpImpairmentProxy) -> None:
        self.proxy = proxy

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.proxy._arrived(data)


class UdpImpairmentProxy:
    """Forwards datagrams one way (device to station) through a seeded :class:`UdpImpairer`."""

    def __init__(self, target: tuple[str, int], settings: UdpSettings | None = None, *,
                 seed: int = 0, listen: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        self.target = target
        self.listen = listen
        self.impairer = UdpImpairer(settings or UdpSettings(), seed)
        # whoever sits on the path sees every datagram: taps are called with each one as it
        # arrives (lab 06 captures a signed datagram here, where it cannot sniff without root)
        self.taps: list[Callable[[bytes], None]] = []
        self.port = 0
        self._inbound: asyncio.DatagramTransport | None = None
        self._outbound: asyncio.DatagramTransport | None = None
        self._pending: set[asyncio.TimerHandle] = set()

    @property
    def settings(self) -> UdpSettings:
        return self.impairer.settings

    @property
    def counters(self) -> dict[str, int]:
        return self.impairer.counters.as_dict()

    async def start(self) -> UdpImpairmentProxy:
        self.settings.check()
        loop = asyncio.get_running_loop()
        self._outbound, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=self.target)
        self._inbound, _ = await loop.create_datagram_endpoint(
            lambda: _Inbound(self), local_addr=self.listen, family=socket.AF_INET)
        # a receive buffer as large as the station's own (StationConfig.udp_receive_buffer; the
        # kernel caps it at net.core.rmem_max): a burst the event loop is late for would
        # otherwise be dropped by the kernel, a loss the proxy's counters never see
        self._inbound.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                                                          RECEIVE_BUFFER)
        self.port = self._inbound.get_extra_info("sockname")[1]
        return self

    def _arrived(self, data: bytes) -> None:
        for tap in self.taps:
            tap(data)
        loop = asyncio.get_running_loop()
        try:
            times = self.impairer.decide(loop.time())
        except ValueError as exc:  # settings changed to something impossible: pass it through
            log.warning("impairment settings rejected (%s); forwarding unimpaired", exc)
            times = [loop.time()]
        for at in times:
            self._schedule(loop, at, data)

    def _schedule(self, loop: asyncio.AbstractEventLoop, at: float, data: bytes) -> None:
        handle: asyncio.TimerHandle | None = None

        def send() -> None:
            self._pending.discard(handle)  # type: ignore[arg-type]
            if self._outbound is not None:
                self._outbound.sendto(data)

        handle = loop.call_at(at, send)
        self._pending.add(handle)

    async def stop(self) -> None:
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
        for transport in (self._inbound, self._outbound):
            if transport is not None:
                transport.close()
        self._inbound = self._outbound = None


@dataclass
class TcpCounters:
    connections: int = 0
    bytes_up: int = 0  # device to station
    bytes_down: int = 0
    resets: int = 0
    refused: int = 0  # the station was not there to connect to

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(eq=False)  # kept in a set: identity, not field equality
class _Connection:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    tasks: list[asyncio.Task] = field(default_factory=list)

    def reset(self) -> None:
        """Close both sides with an RST (SO_LINGER 0), as a crashed middlebox would."""
        for writer in (self.client, self.upstream):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
            writer.transport.abort()


class TcpImpairmentProxy:
    """Forwards TCP connections, adding latency, a bandwidth limit, stalls and resets."""

    def __init__(self, target: tuple[str, int], settings: TcpSettings | None = None, *,
                 listen: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        self.target = target
        self.listen = listen
        self.settings = settings or TcpSettings()
        self.totals = TcpCounters()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._handlers: set[asyncio.Task] = set()  # one per accepted connection, until it ends
        # an observer on the path: each tap is called with ("up" or "down", the bytes) for every
        # piece read from either side (lab 06 reads what TLS leaves visible: sizes and timing)
        self.taps: list[Callable[[str, bytes], None]] = []

    @property
    def counters(self) -> dict[str, int]:
        return {**self.totals.as_dict(), "open": len(self._connections)}

    async def start(self) -> TcpImpairmentProxy:
        self.settings.check()
        self._server = await asyncio.start_server(self._accept, *self.listen,
                                                  family=socket.AF_INET)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def reset_connections(self) -> int:
        """Reset every connection now; returns how many. Clients see ECONNRESET."""
        conns = list(self._connections)
        for conn in conns:
            conn.reset()
        self.totals.resets += len(conns)
        return len(conns)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
            handler.add_done_callback(self._handlers.discard)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            self.totals.refused += 1
            writer.close()
            return
        self.totals.connections += 1
        conn = _Connection(writer, up_writer)
        self._connections.add(conn)
        conn.tasks = [asyncio.create_task(self._pump(reader, up_writer, "bytes_up")),
                      asyncio.create_task(self._pump(up_reader, writer, "bytes_down"))]
        try:
            await asyncio.wait(conn.tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in conn.tasks:
                task.cancel()
            await asyncio.gather(*conn.tasks, return_exceptions=True)
            self._connections.discard(conn)
            for w in (writer, up_writer):
                w.close()

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                    counter: str) -> None:
        """Copy one direction: every piece waits ``latency``, then the bandwidth limit."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    return
                while self.settings.stall:
                    await asyncio.sleep(0.05)
                await asyncio.sleep(max(0.0, due - loop.time()))
                if self.settings.bandwidth:
                    await asyncio.sleep(len(data) / self.settings.bandwidth)
                dst.write(data)
                await dst.drain()
                setattr(self.totals, counter, getattr(self.totals, counter) + len(data))

        sender = asyncio.create_task(deliver())
        try:
            while True:
                chunk = await src.read(16384 if self.settings.bandwidth else 65536)
                for tap in self.taps:
                    if chunk:
                        tap("up" if counter == "bytes_up" else "down", chunk)
                await queue.put((loop.time() + self.settings.latency, chunk))
                if not chunk:
                    break
            await sender
        except (ConnectionError, OSError):
            pass
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.reset()
        # every handler ends once its sockets are reset; none may outlive the proxy, or the
        # loop that closes after it reports them as destroyed while pending
        if self._handlers:
            _, stuck = await asyncio.wait(set(self._handlers), timeout=2.0)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
