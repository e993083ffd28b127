"""WebSocket on the wire, for Lab 03: the handshake's accept key, a teaching frame parser, the two
byte streams of a captured TCP connection, a client on a plain socket, and a bounded sniff.

The lab's learners write their own accept key and frame parser; the ones here are the references
their checks compare with (and which the tests check against frames Tornado itself sends). The
plain-socket client exists because a library client hides exactly what the lab is about: it
counts every byte it sends and receives, and it can stop reading, as a frozen dashboard would.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .waiting import wait_until

#: RFC 6455, section 1.3: appended to the client's key before hashing
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OPCODES = {0x0: "continuation", 0x1: "text", 0x2: "binary", 0x8: "close", 0x9: "ping",
           0xA: "pong"}


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer to ``Sec-WebSocket-Key``: proof that it
    read this very handshake and speaks WebSocket (an HTTP cache replaying an old answer, or a
    server that merely echoes headers, cannot produce it)."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode("ascii")).digest()).decode("ascii")


class IncompleteFrame(ValueError):
    """The bytes end before the frame does: wait for more of the stream."""


@dataclass(frozen=True)
class Frame:
    """One WebSocket frame (RFC 6455, section 5.2), its payload already unmasked."""

    fin: bool
    opcode: int
    masked: bool
    length: int
    mask: bytes | None
    payload: bytes
    header_size: int

    @property
    def size(self) -> int:
        """Bytes on the wire: header, masking key and payload."""
        return self.header_size + self.length

    @property
    def kind(self) -> str:
        return OPCODES.get(self.opcode, f"reserved 0x{self.opcode:x}")

    @property
    def close_code(self) -> int | None:
        """A close frame's status code (its first two payload bytes), if it has one."""
        if self.opcode != 0x8 or len(self.payload) < 2:
            return None
        return int(struct.unpack("!H", self.payload[:2])[0])

    @property
    def close_reason(self) -> str:
        return self.payload[2:].decode("utf-8", "replace") if self.opcode == 0x8 else ""

    def text(self) -> str:
        return self.payload.decode("utf-8")


def parse_frame(data: bytes, offset: int = 0) -> Frame:
    """The frame starting at ``data[offset]``. Raises :class:`IncompleteFrame` if the bytes stop
    before it ends.

    Byte 0: FIN (bit 7) and the opcode (bits 0-3). Byte 1: MASK (bit 7) and a 7-bit length;
    126 means the length follows in 16 bits, 127 in 64 bits (network order). A masked frame then
    has a 4-byte key, and payload byte ``i`` is XORed with ``key[i % 4]``.
    """
    if len(data) - offset < 2:
        raise IncompleteFrame(f"a frame header needs 2 bytes, {len(data) - offset} left")
    b0, b1 = data[offset], data[offset + 1]
    pos = offset + 2
    length = b1 & 0x7F
    if length in (126, 127):
        width = 2 if length == 126 else 8
        if len(data) - pos < width:
            raise IncompleteFrame("the extended payload length is cut off")
        length = int.from_bytes(data[pos:pos + width], "big")
        pos += width
    masked = bool(b1 & 0x80)
    mask = None
    if masked:
        if len(data) - pos < 4:
            raise IncompleteFrame("the masking key is cut off")
        mask = bytes(data[pos:pos + 4])
        pos += 4
    if len(data) - pos < length:
        raise IncompleteFrame(f"the payload needs {length} bytes, {len(data) - pos} left")
    payload = bytes(data[pos:pos + length])
    if mask is not None:
        payload = unmask(payload, mask)
    return Frame(fin=bool(b0 & 0x80), opcode=b0 & 0x0F, masked=masked, length=length, mask=mask,
                 payload=payload, header_size=pos - offset)


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR each byte with the key, round and round (the same operation masks and unmasks)."""
    if not payload:
        return b""
    key = (mask * (len(payload) // 4 + 1))[:len(payload)]
    # XOR as two big integers: the same as byte by byte, and fast in Python for 64 KiB frames
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(
        len(payload), "big")


def explain_header(data: bytes, offset: int = 0) -> str:
    """The first bytes of the frame at ``data[offset]``, read aloud field by field (what lab 03
    says of the first frame each side sent, for whichever capture it reads)."""
    frame = parse_frame(data, offset)
    b0, b1 = data[offset], data[offset + 1]
    small = b1 & 0x7F
    words = [f"`{b0:02x}`: FIN {'set' if frame.fin else 'clear'}, opcode {frame.opcode} "
             f"({frame.kind})."]
    said = f"`0x80 | {small}`: masked" if frame.masked else f"{small} with MASK clear"
    if small < 126:
        words.append(f"`{b1:02x}` = {said}, {frame.length} bytes")
    else:
        width = 2 if small == 126 else 8
        length = data[offset + 2:offset + 2 + width].hex(" ")
        words.append(f"`{b1:02x}` = {said}: the length is in the next {width} bytes, "
                     f"`{length}` = {frame.length}")
    if frame.mask is not None:
        words[-1] += f", then the key `{frame.mask.hex(' ')}`, then the payload XORed with it."
    else:
        start = offset + frame.header_size
        first = data[start:start + 2]
        words[-1] += (f", and the payload starts right after, `{first.hex(' ')}` = "
                      f"`{first.decode(errors='replace')}`.")
    return " ".join(words)


def iter_frames(data: bytes, offset: int = 0) -> Iterator[tuple[int, Frame]]:
    """(offset, frame) for every complete frame from ``offset`` on; a cut-off last one is left."""
    while offset < len(data):
        try:
            frame = parse_frame(data, offset)
        except IncompleteFrame:
            return
        yield offset, frame
        offset += frame.size


def encode_websocket_frame(payload: bytes | str, *, opcode: int = 0x1, fin: bool = True,
                 mask: bytes | None = None) -> bytes:
    """One frame. Clients must mask (``mask``: 4 random bytes), servers must not (RFC 6455 5.1)."""
    data = payload.encode() if isinstance(payload, str) else payload
    head = bytes([(0x80 if fin else 0) | opcode])
    bit = 0x80 if mask is not None else 0
    if len(data) < 126:
        head += bytes([bit | len(data)])
    elif len(data) < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", len(data))
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", len(data))
    if mask is None:
        return head + data
    return head + mask + unmask(data, mask)


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


# -- a captured connection ---------------------------------------------------------------------


@dataclass
class Stream:
    """The bytes one side of a TCP connection sent, in order, each mapped to its packet."""

    src: tuple[str, int]
    dst: tuple[str, int]
    data: bytes
    starts: list[tuple[int, int]] = field(default_factory=list)  # (stream offset, packet index)

    def packet_at(self, offset: int) -> int:
        """The index (in the capture, as in ``packets[i]``) of the packet carrying this byte."""
        found = None
        for start, index in self.starts:
            if start > offset:
                break
            found = index
        if found is None:
            raise IndexError(f"offset {offset} is before this stream's first byte")
        return found


def tcp_streams(packets: Iterable[Any], port: int) -> dict[str, Stream]:
    """``{"client": ..., "server": ...}``: what each side of the first TCP connection to ``port``
    sent, reassembled by sequence number (retransmitted bytes counted once), as a receiving
    TCP would hand it to the application."""
    from scapy.layers.inet import IP, TCP

    pieces: dict[str, dict[int, tuple[bytes, int]]] = {"client": {}, "server": {}}
    ends: dict[str, tuple[tuple[str, int], tuple[str, int]]] = {}
    isn: dict[str, int] = {}
    client_port = None
    for index, pkt in enumerate(packets):
        if not pkt.haslayer(TCP) or port not in (pkt[TCP].sport, pkt[TCP].dport):
            continue
        tcp = pkt[TCP]
        other = tcp.sport if tcp.dport == port else tcp.dport
        if client_port is None:
            client_port = other
        if other != client_port:
            continue  # a later connection
        side = "client" if tcp.dport == port else "server"
        ends.setdefault(side, ((pkt[IP].src, tcp.sport), (pkt[IP].dst, tcp.dport)))
        if tcp.flags.S:
            isn[side] = tcp.seq + 1
        payload = bytes(tcp.payload)
        if payload:
            pieces[side].setdefault(tcp.seq, (payload, index))
    out = {}
    for side, parts in pieces.items():
        if side not in ends:
            continue
        start = isn.get(side, min(parts) if parts else 0)
        data = bytearray()
        starts = []
        for seq in sorted(parts, key=lambda s: (s - start) % (1 << 32)):
            payload, index = parts[seq]
            rel = (seq - start) % (1 << 32)
            if rel + len(payload) <= len(data):
                continue  # wholly a retransmission
            if rel > len(data):
                break  # a hole: bytes the capture missed
            starts.append((len(data), index))
            data += payload[len(data) - rel:]
        out[side] = Stream(ends[side][0], ends[side][1], bytes(data), starts)
    return out


def http_head(data: bytes) -> tuple[str, dict[str, str], int]:
    """(start line, headers with lower-case names, offset of the first byte after the blank
    line) of an HTTP/1.1 message at the start of ``data``."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise ValueError("no blank line: not a complete HTTP head")
    lines = data[:end].decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, end + 4


# -- a client on a plain socket ----------------------------------------------------------------


class RawWebSocket:
    """A WebSocket client on a plain, non-blocking socket, driven by the running asyncio loop.

    ``await RawWebSocket.connect(host, port)`` does the handshake by hand and checks the
    server's accept key. ``bytes_sent``/``bytes_received`` count everything, handshake included.
    A client that simply stops calling :meth:`read_frame` is a dashboard that stopped reading;
    give it a small ``rcvbuf`` and the server notices within seconds.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.bytes_sent = 0
        self.bytes_received = 0
        self.handshake_bytes = 0  # the upgrade request and the 101 answer
        self.handshake_received = 0
        self.response_head: dict[str, str] = {}

    @classmethod
    async def connect(cls, host: str, port: int, path: str = "/ws", *,
                      rcvbuf: int | None = None, timeout: float = 5.0) -> RawWebSocket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connecting, so the advertised window is small too
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        ws = cls(sock)
        try:
            await asyncio.wait_for(ws._handshake(host, port, path), timeout)
        except BaseException:
            sock.close()
            raise
        return ws

    async def _handshake(self, host: str, port: int, path: str) -> None:
        loop = asyncio.get_running_loop()
        await loop.sock_connect(self.sock, (host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        await self._send((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                          "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                          ).encode())
        while b"\r\n\r\n" not in self.buffer:
            await self._receive()
        status, headers, end = http_head(self.buffer)
        if " 101 " not in status + " ":
            raise ConnectionError(f"no upgrade: {status}")
        if headers.get("sec-websocket-accept") != accept_key(key):
            raise ConnectionError("the server's Sec-WebSocket-Accept does not match our key")
        self.response_head = headers
        self.buffer = self.buffer[end:]
        self.handshake_received = self.bytes_received - len(self.buffer)
        self.handshake_bytes = self.bytes_sent + self.handshake_received

    async def _send(self, data: bytes) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, data)
        self.bytes_sent += len(data)

    async def _receive(self) -> None:
        chunk = await asyncio.get_running_loop().sock_recv(self.sock, 65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.bytes_received += len(chunk)
        self.buffer += chunk

    async def send_text(self, text: str) -> None:
        """A text frame, masked with a fresh random key as every client frame must be."""
        await self._send(encode_websocket_frame(text, mask=os.urandom(4)))

    async def read_frame(self) -> Frame:
        """The next frame from the server (wrap in ``asyncio.wait_for`` for a deadline)."""
        while True:
            try:
                frame = parse_frame(self.buffer)
            except IncompleteFrame:
                await self._receive()
                continue
            self.buffer = self.buffer[frame.size:]
            return frame

    async def read_until_close(self, timeout: float) -> tuple[list[Frame], Frame | None]:
        """Read everything the server still sends, up to its close frame (or the deadline, or
        the end of the connection): (frames before the close, the close frame or None). The
        close is answered with a close frame of our own, as RFC 6455 (5.5.1) asks, so that the
        server can end the TCP connection at once."""
        frames: list[Frame] = []

        async def until_close() -> Frame:
            while (frame := await self.read_frame()).opcode != 0x8:
                frames.append(frame)
            return frame
        close = None
        with contextlib.suppress(TimeoutError, ConnectionError):
            close = await asyncio.wait_for(until_close(), timeout)
        if close is not None:
            with contextlib.suppress(OSError):  # the server may have given up on us already
                await self._send(encode_websocket_frame(close.payload[:2], opcode=0x8,
                                                        mask=os.urandom(4)))
        return frames, close

    def close(self) -> None:
        self.sock.close()


# -- a bounded live capture on loopback ---------------------------------------------------------


class LoopbackSniffer:
    """Capture on ``lo`` with a BPF filter while the body of a ``with`` runs (root needed; ask
    :func:`vitalsim.impair.live.capture_unavailable_reason` first).

    On loopback the kernel shows each packet twice, going out and coming in; only the incoming
    copy is kept, so the capture looks like one from any other interface. ``await
    sniffer.wait_until(...)`` waits for a condition on the packets so far, with a deadline,
    rather than sleeping and hoping that the last packets have been read.
    """

    def __init__(self, bpf: str, *, iface: str = "lo", limit: int = 1000) -> None:
        self.bpf, self.iface, self.limit = bpf, iface, limit
        self.packets: list[Any] = []
        self._lock = threading.Lock()
        self._sniffer: Any = None

    def _keep(self, pkt: Any) -> None:
        with self._lock:
            if len(self.packets) < self.limit:
                self.packets.append(pkt)

    def __enter__(self) -> LoopbackSniffer:
        from vitalsim.impair.live import start_sniffer

        self._sniffer = start_sniffer(self.bpf, iface=self.iface, store=False, prn=self._keep)
        return self

    def snapshot(self) -> list[Any]:
        with self._lock:
            return list(self.packets)

    async def wait_until(self, predicate: Callable[[list[Any]], object], *,
                         timeout: float = 3.0) -> bool:
        """True once ``predicate(packets so far)`` holds; False at the deadline."""
        try:
            await wait_until(lambda: predicate(self.snapshot()), timeout=timeout,
                             what="the packets")
        except TimeoutError:
            return False
        return True

    def _stop(self) -> None:
        if self._sniffer is not None and self._sniffer.running:
            self._sniffer.stop()
        self._sniffer = None

    def __exit__(self, *exc: object) -> None:
        self._stop()


def connection_closed(packets: list[Any]) -> bool:
    """Both sides of a TCP connection have sent their FIN: nothing more will come."""
    from scapy.layers.inet import TCP

    return sum(1 for p in packets if p.haslayer(TCP) and p[TCP].flags.F) >= 2
