"""UDP telemetry ingest: datagrams in, bed state and reception statistics updated.

The boundary validates before anything is stored, in this order: the datagram decodes (and its
tag verifies), its device is provisioned for its bed (``unknown_device``), its send time and
boot id are not in the future beyond a bound (``future``), every value is finite and plausible
(``bad_value``), it is not from an earlier boot of its device (``old_boot``; a newer boot is a
restart, believed from its second datagram, ``new_boot`` for the first), it is not a replay
(``replay``: its (boot id, sequence number) was admitted already, or is further behind than the
device's anti-replay window reaches), and its sequence number is not too far ahead
(``sequence``). A datagram that fails is
counted by reason and logged (rate-limited, the first of each reason always); it never reaches
the beds and never stops the endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from vitalsim.clock import Clock
from vitalsim.keys import KeyFile
from vitalsim.protocol import NumericsMessage, TelemetryError, WaveMessage, decode
from vitalsim.protocol.validate import MAX_SKEW, check_message

from .beds import BedRegistry
from .ratelog import RejectLog

log = logging.getLogger("server.ingest")

#: bytes read per datagram: more than any telemetry datagram (MAX_DATAGRAM, 1200), so that a
#: larger one arrives whole and is rejected for its length rather than cut short
MAX_RECEIVE = 65536


class TelemetryIngest(asyncio.DatagramProtocol):
    def __init__(self, beds: BedRegistry, clock: Clock, *,
                 keys: dict[int, bytes] | None = None, require_tag: bool = False,
                 device_keys: KeyFile | None = None,
                 on_numerics: Callable[[int], None] | None = None,
                 on_wave: Callable[[WaveMessage], None] | None = None,
                 max_skew: float = MAX_SKEW) -> None:
        self.beds = beds
        self.clock = clock
        self.keys = keys
        self.require_tag = require_tag
        # each device's own keys, looked up at the station's time (a retired key is refused)
        self.key_for = None if device_keys is None else \
            (lambda device_id, key_id: device_keys.lookup(device_id, key_id, clock.now()))
        self.on_numerics = on_numerics
        self.on_wave = on_wave  # only the naive design (coalesce=False) pushes each chunk
        self.received = 0
        self.bytes = 0
        self.max_skew = max_skew
        self.rejects = RejectLog(log, "telemetry datagram")
        self.rejected = self.rejects.counts  # reason -> count
        self.last_error = self.rejects.last_error  # reason -> the newest message
        self.transport: asyncio.DatagramTransport | None = None
        self._buffer = memoryview(bytearray(MAX_RECEIVE))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def read_from(self, sock: socket.socket, budget: int = 256) -> None:
        """Read every datagram waiting on ``sock``, at most ``budget``, in one go.

        The station calls this when its event loop says the socket is readable. asyncio's own
        datagram transport reads one datagram per turn of the loop, and each turn costs more
        than the datagram's decoding; under load, many are waiting, so one turn takes a burst.
        The budget keeps a flood from starving the loop's other work (timers, dashboards)."""
        # into one reused buffer, then a copy of just the datagram: recvfrom(MAX_RECEIVE)
        # would allocate MAX_RECEIVE bytes for every datagram before shrinking them
        buffer = self._buffer
        recvfrom_into = sock.recvfrom_into
        receive = self.datagram_received
        for _ in range(budget):
            try:
                size, addr = recvfrom_into(buffer)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. an ICMP error queued on the socket: keep serving
                log.debug("telemetry socket: %r", exc)
                return
            receive(buffer[:size].tobytes(), addr)

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        now = self.clock.now()
        self.bytes += len(data)
        try:
            msg = decode(data, keys=self.keys, require_tag=self.require_tag,
                         key_for=self.key_for)
            bed = self.beds.get(msg.bed, msg.device_id)
            if bed is None:
                raise TelemetryError("unknown_device", f"device {msg.device_id} is not "
                                     f"provisioned for bed {msg.bed}")
            check_message(msg, now, max_skew=self.max_skew)
            verdict = bed.stats.judge(msg.boot_id, msg.seq)
            if verdict not in ("admit", "restart"):
                raise TelemetryError(verdict, _refusal(verdict, msg, bed.stats.boot_id))
        except TelemetryError as exc:
            message = str(exc)
            if exc.reason == "bad_magic" and data[:1] in (b"{", b"["):
                message = ("bad_magic: this looks like JSON; telemetry here is binary, see "
                           "docs/PROTOCOL.md (section 1) for the datagram's layout")
            self.rejects.reject(exc.reason, message, f"{addr[0]}:{addr[1]}", now)
            return
        self.received += 1
        kind = bed.stats.observe(msg.seq, msg.sent_at, now)
        if isinstance(msg, NumericsMessage):
            bed.update(msg, now, newest=kind in ("new", "restart"))
            if self.on_numerics is not None:
                self.on_numerics(msg.bed)
        elif isinstance(msg, WaveMessage):
            bed.add_wave(msg)
            if self.on_wave is not None:
                self.on_wave(msg)

    def counters(self) -> dict:
        return {"received": self.received, "bytes": self.bytes,
                "rejected": dict(self.rejected), "rejected_total": self.rejects.total}


def _refusal(verdict: str, msg: NumericsMessage | WaveMessage, current: int | None) -> str:
    """What a sender is told when :meth:`ReceiverStats.judge` refuses its datagram."""
    if verdict == "old_boot":
        return (f"boot id {msg.boot_id} is older than device {msg.device_id}'s current boot "
                f"{current}: sent before the device restarted (a replay or a straggler)")
    if verdict == "new_boot":
        return (f"boot id {msg.boot_id} is newer than device {msg.device_id}'s current boot "
                f"{current}; a restart is believed when the next datagram of that boot "
                "continues from it")
    if verdict == "replay":
        return (f"seq {msg.seq} of boot {msg.boot_id} was admitted from device "
                f"{msg.device_id} already, or is too far behind its anti-replay window to tell: "
                "a replay (or a network duplicate), not stored again")
    return (f"seq {msg.seq} is outside device {msg.device_id}'s window; believed only when the "
            "next datagram continues from it")
