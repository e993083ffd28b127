"""TCP on virtual time, for generated captures: two ends exchange real segments (scapy packets with
consistent sequence and acknowledgement numbers) across a wire that may drop some of them, and the
capture is every packet the wire saw, as a sniffer on the station's side records it.

Enough of TCP for the alarm channel's trace exercises, and no more:

- the three-way handshake with the usual options (MSS, SACK permitted, timestamps, window scale),
  a SYN re-sent after 1 s when it was lost, and a RST (with ACK, window 0) for a SYN to a port
  nothing listens on;
- each write sent at once (the alarm channel sets TCP_NODELAY), cut at the MSS;
- a retransmission timer of about 200 ms (Linux's shortest), doubling at each expiry, that re-sends
  the oldest unacknowledged segment;
- a receiver that keeps out-of-order segments, answers them and old copies with a duplicate ACK at
  once, and acknowledges in-order data at once or after a delay (the delayed ACK), unless data of
  its own carries the ACK first;
- FIN, acknowledged, from either side.

A sniffer on the station's side sees a packet towards the station *before* the drop rule throws
it away (as nftables does in lab 02's namespaces): a lost packet is in the capture once, like any
other, and what follows shows it was lost. Pure Python with a seeded random source, no sockets and
no root: the same seed gives the same packets.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

#: Linux's shortest retransmission timeout, and its initial one for a SYN
MIN_RTO, SYN_RTO = 0.2, 1.0
_WRAP = 2**32


@dataclass
class _Segment:
    seq: int
    data: bytes = b""
    syn: bool = False
    fin: bool = False
    sacked_resent: bool = False  # already sent again because a later segment was SACKed

    @property
    def length(self) -> int:
        return len(self.data) + self.syn + self.fin


@dataclass
class Wire:
    """The network between the ends, and the capture: ``packets`` in the order the sniffer saw
    them. ``drop(packet)`` decides a packet's fate (True: lost); ``delay`` is one way's time."""

    delay: float = 0.00003
    ethernet: bool = False
    drop: Callable[[Packet], bool] = lambda packet: False
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    packets: list[Packet] = field(default_factory=list)
    _events: list = field(default_factory=list)
    _order: itertools.count = field(default_factory=itertools.count)
    _ends: dict = field(default_factory=dict)
    _listeners: dict = field(default_factory=dict)
    now: float = 0.0

    def at(self, when: float, action: Callable[[float], None]) -> None:
        """Run ``action(when)`` at virtual time ``when``."""
        heapq.heappush(self._events, (when, next(self._order), action))

    def run(self, until: float) -> None:
        while self._events and self._events[0][0] <= until:
            self.now, _, action = heapq.heappop(self._events)
            action(self.now)
        self.now = until

    def listen(self, ip: str, port: int, accept: Callable[[TcpEnd, float], None] | None,
               **end_options: object) -> None:
        """Accept connections to ``ip:port`` (``accept(end, now)`` once established, each end
        made with ``end_options``), or, with None, refuse them: a SYN is answered with RST, as
        the kernel does for a closed port."""
        self._listeners[(ip, port)] = (accept, end_options) if accept is not None else None

    def send(self, src: TcpEnd, flags: str, seq: int, ack: int, data: bytes, now: float,
             *, options: list | None = None, window: int | None = None) -> None:
        tcp = TCP(sport=src.port, dport=src.peer_port, flags=flags, seq=seq % _WRAP,
                  ack=ack % _WRAP if "A" in flags else 0,
                  window=window if window is not None else src.window,
                  options=options if options is not None else src.options(now))
        pkt = IP(src=src.ip, dst=src.peer_ip, ttl=64, id=0, flags="DF") / tcp
        if data:
            pkt = pkt / Raw(data)
        if self.ethernet:
            pkt = Ether(src=src.mac, dst=src.peer_mac) / pkt
        pkt = pkt.__class__(bytes(pkt))  # checksums and lengths, as on the wire
        pkt.time = now
        self.packets.append(pkt)
        if not self.drop(pkt):
            tsval = dict(tcp.options).get("Timestamp", (0, 0))[0]
            sacked = "SAck" in dict(tcp.options)
            self.at(now + self.delay,
                    lambda t: self._arrive(src, flags, seq, ack, data, tsval, t, sacked))

    def _arrive(self, src: TcpEnd, flags: str, seq: int, ack: int, data: bytes, tsval: int,
                now: float, sacked: bool = False) -> None:
        key = (src.peer_ip, src.peer_port, src.ip, src.port)
        end = self._ends.get(key)
        if end is not None:
            end._ts_recent = tsval or end._ts_recent
            if sacked:
                end.sack_received(ack, now)
            end.receive(flags, seq, ack, data, now)
            return
        if "S" not in flags or "A" in flags or "R" in flags:
            return  # for a connection already gone: nothing we need to show
        listener = self._listeners.get((src.peer_ip, src.peer_port))
        if listener is None:  # nothing listens: the kernel refuses
            refuser = TcpEnd(self, src.peer_ip, src.peer_port, src.ip, src.port, iss=0,
                             ts_base=0, mac=src.peer_mac, peer_mac=src.mac)
            self.send(refuser, "RA", 0, seq + 1, b"", now, options=[], window=0)
            return
        accept, options = listener
        end = TcpEnd(self, src.peer_ip, src.peer_port, src.ip, src.port,
                     iss=self.rng.getrandbits(31), ts_base=self.rng.getrandbits(31),
                     rng=self.rng, mac=src.peer_mac, peer_mac=src.mac, **options)
        end.on_established = accept
        self._ends[key] = end
        end._ts_recent = tsval
        end.receive(flags, seq, ack, data, now)


class TcpEnd:
    """One end of one connection. The application writes with :meth:`write` and :meth:`close`;
    it hears of the connection through ``on_established(end, now)``, its data through
    ``on_data(bytes, now)``, the peer's FIN through ``on_fin(now)`` and a RST through
    ``on_reset(now)``."""

    def __init__(self, wire: Wire, ip: str, port: int, peer_ip: str, peer_port: int, *,
                 iss: int, ts_base: int, rng: random.Random | None = None, mss: int = 65483,
                 ack_delay: float = 0.0, mac: str = "", peer_mac: str = "",
                 syn_window: int = 65495) -> None:
        self.wire, self.ip, self.port, self.peer_ip, self.peer_port = wire, ip, port, \
            peer_ip, peer_port
        self.mac, self.peer_mac = mac, peer_mac
        self.rng = rng or random.Random(iss)
        self.mss, self.ack_delay = mss, ack_delay
        self.syn_window, self.window = syn_window, 64  # scaled by 1024 after the handshake
        self.iss = iss
        self.snd_una = self.snd_nxt = iss
        self.rcv_nxt: int | None = None
        self.unacked: list[_Segment] = []
        self._ooo: dict[int, _Segment] = {}
        self._ts_base, self._ts_recent = ts_base, 0
        # about 200 ms: Linux's floor plus a few ms of measured round-trip variation
        self._base_rto = MIN_RTO + self.rng.randint(2, 12) / 1000
        self._rto, self._syn_rto = self._base_rto, SYN_RTO
        self._timer = 0  # the generation of the running timer; 0: none
        self._delayed = 0  # the generation of a pending delayed ACK; 0: none
        self._generations = itertools.count(1)
        self.established = self.closed = False
        self.on_established: Callable[[TcpEnd, float], None] = lambda end, now: None
        self.on_data: Callable[[bytes, float], None] = lambda data, now: None
        self.on_fin: Callable[[float], None] = lambda now: None
        self.on_reset: Callable[[float], None] = lambda now: None

    def options(self, now: float) -> list:
        tsval = (self._ts_base + round(now * 1000)) % _WRAP
        return [("NOP", None), ("NOP", None), ("Timestamp", (tsval, self._ts_recent))]

    def _syn_options(self, now: float) -> list:
        tsval = (self._ts_base + round(now * 1000)) % _WRAP
        return [("MSS", self.mss), ("SAckOK", b""), ("Timestamp", (tsval, self._ts_recent)),
                ("NOP", None), ("WScale", 10)]

    # -- the application's side --------------------------------------------------------------

    def connect(self, now: float) -> TcpEnd:
        """Open the connection (this end is the client): the SYN."""
        self.wire._ends[(self.ip, self.port, self.peer_ip, self.peer_port)] = self
        self._queue(_Segment(self.iss, syn=True), now)
        return self

    def write(self, data: bytes, now: float) -> None:
        for at in range(0, len(data), self.mss):
            self._queue(_Segment(self.snd_nxt, data[at:at + self.mss]), now)

    def close(self, now: float) -> None:
        """Send FIN (after whatever is still queued)."""
        if not self.closed:
            self.closed = True
            self._queue(_Segment(self.snd_nxt, fin=True), now)

    # -- sending -----------------------------------------------------------------------------

    def _queue(self, segment: _Segment, now: float) -> None:
        self.snd_nxt = segment.seq + segment.length
        self.unacked.append(segment)
        self._transmit(segment, now)
        if self._timer == 0:
            self._arm(now, self._syn_rto if segment.syn else self._rto)

    def _transmit(self, segment: _Segment, now: float) -> None:
        flags = ("S" if segment.syn else "") + ("F" if segment.fin else "")
        if self.rcv_nxt is not None:
            flags += "A"
        if segment.data:
            flags += "P"
        flags = "".join(f for f in "FSRPA" if f in flags)
        self._delayed = 0  # this segment carries the ACK
        options = self._syn_options(now) if segment.syn else None
        self.wire.send(self, flags, segment.seq, self.rcv_nxt or 0, segment.data, now,
                       options=options, window=self.syn_window if segment.syn else None)

    def _ack_now(self, now: float) -> None:
        self._delayed = 0
        options = None
        if self._ooo:  # SACK: the first block received beyond the hole
            left = min(self._ooo)
            right = left + self._ooo[left].length
            while right in self._ooo:
                right += self._ooo[right].length
            options = self.options(now) + [("NOP", None), ("NOP", None),
                                           ("SAck", (left % _WRAP, right % _WRAP))]
        self.wire.send(self, "A", self.snd_nxt, self.rcv_nxt or 0, b"", now, options=options)

    def _ack_later(self, now: float) -> None:
        if self.ack_delay <= 0:
            self._ack_now(now)
            return
        if self._delayed:
            return
        generation = self._delayed = next(self._generations)
        self.wire.at(now + self.ack_delay,
                     lambda t: self._ack_now(t) if self._delayed == generation else None)

    def _arm(self, now: float, timeout: float) -> None:
        generation = self._timer = next(self._generations)
        self.wire.at(now + timeout, lambda t: self._expire(generation, t))

    def _expire(self, generation: int, now: float) -> None:
        if generation != self._timer or not self.unacked:
            return
        oldest = self.unacked[0]
        self._transmit(oldest, now)
        if oldest.syn:
            self._syn_rto *= 2
        else:
            self._rto = min(self._rto * 2, 60.0)
        self._arm(now, self._syn_rto if oldest.syn else self._rto)

    # -- receiving ---------------------------------------------------------------------------

    def receive(self, flags: str, seq: int, ack: int, data: bytes, now: float) -> None:
        if "R" in flags:
            self._timer, self.established = 0, False
            self.wire._ends.pop((self.ip, self.port, self.peer_ip, self.peer_port), None)
            self.on_reset(now)
            return
        if "S" in flags:
            if self.rcv_nxt is None:
                self.rcv_nxt = seq + 1
            if "A" not in flags:  # a SYN to a listener: answer with SYN-ACK (again, if re-sent)
                if not self.unacked:
                    self._queue(_Segment(self.iss, syn=True), now)
                else:
                    self._transmit(self.unacked[0], now)
                return
        if "A" in flags:
            self._acknowledged(ack, now)
            if not self.established and self.snd_una > self.iss:
                self.established = True
                if "S" in flags:
                    self._ack_now(now)
                self.on_established(self, now)
        if "S" in flags:
            return
        segment = _Segment(seq, data, fin="F" in flags)
        if segment.length == 0 or self.rcv_nxt is None:
            return
        if seq > self.rcv_nxt:  # a hole before it: keep it, and say what is still missing
            self._ooo[seq] = segment
            self._ack_now(now)
            return
        if seq + segment.length <= self.rcv_nxt:  # an old copy: the ACK for it was lost
            self._ack_now(now)
            return
        delivered, fin = b"", False
        while segment is not None:
            skip = self.rcv_nxt - segment.seq
            delivered += segment.data[skip:]
            self.rcv_nxt = segment.seq + segment.length
            fin = fin or segment.fin
            segment = self._ooo.pop(self.rcv_nxt, None)
        self._ooo = {s: g for s, g in self._ooo.items() if s > self.rcv_nxt}
        if fin:
            self._ack_now(now)
        else:
            self._ack_later(now)
        if delivered:
            self.on_data(delivered, now)
        if fin:
            self.on_fin(now)

    def sack_received(self, ack: int, now: float) -> None:
        """A duplicate ACK that SACKs data beyond ``ack``: the segment at ``ack`` is lost (on a
        link this fast, a later one could not have overtaken it otherwise). Send it again at
        once, as Linux's RACK does, rather than wait for the timer; once per segment."""
        if self.unacked and self.unacked[0].seq == ack and not self.unacked[0].sacked_resent:
            self.unacked[0].sacked_resent = True
            self._transmit(self.unacked[0], now)

    def _acknowledged(self, ack: int, now: float) -> None:
        if ack <= self.snd_una:
            return
        self.snd_una = ack
        self.unacked = [s for s in self.unacked if s.seq + s.length > ack]
        # about 200 ms: Linux's floor plus a few ms of measured round-trip variation
        self._base_rto = MIN_RTO + self.rng.randint(2, 12) / 1000
        self._rto, self._syn_rto = self._base_rto, SYN_RTO
        self._timer = 0
        if self.unacked:
            self._arm(now, self._rto)
