"""The TCP alarm endpoint: Tornado streams around the sans-I/O AlarmReceiver.

For each alarm: journal first, then ACK. A frame that breaks the rules (a bad length, a payload
that is not JSON, a field of the wrong type, a NaN, a device nobody provisioned) gets an ERROR
frame naming what was wrong; the connection is then closed, the reject counted by reason and
logged (rate-limited, the first of each reason always), and the listener keeps serving the
others. A connection that goes silent (no heartbeat) or leaves half a frame waiting is closed
after the receiver's timeouts, which is how a monitor that vanished without a FIN is noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
from collections.abc import Callable

from tornado.iostream import IOStream, StreamClosedError
from tornado.tcpserver import TCPServer

from vitalsim.clock import Clock
from vitalsim.keys import KeyFile
from vitalsim.protocol import AlarmMessage, AlarmReceiver, Error, Hello, RemoteProtocolError
from vitalsim.protocol.alarm_channel import MAX_ERROR, LocalProtocolError, encode_alarm_frame

from .journal import AlarmJournal
from .ratelog import RejectLog

log = logging.getLogger("server.alarms")


class AlarmListener(TCPServer):
    def __init__(self, journal: AlarmJournal, clock: Clock, *,
                 on_alarm: Callable[[AlarmMessage], None],
                 on_connection: Callable[[int, bool], None],
                 provisioned: Callable[[int, int], bool] | None = None,
                 dead_after: float = 6.0, frame_timeout: float = 5.0,
                 frames_per_second: float = 200.0,
                 device_keys: KeyFile | None = None,
                 ssl_options: ssl.SSLContext | None = None) -> None:
        # with ssl_options every connection is TLS; the receiver still sees plain frames
        super().__init__(max_buffer_size=1 << 20, ssl_options=ssl_options)
        self.journal = journal
        self.clock = clock
        self.on_alarm = on_alarm
        self.on_connection = on_connection
        self.provisioned = provisioned
        self.dead_after = dead_after
        self.frame_timeout = frame_timeout
        self.frames_per_second = frames_per_second
        # with keys, every connection authenticates (HELLO, CHALLENGE, AUTH) before its HELLO
        # counts: until then it changes nothing about the device it claims to be
        self.device_keys = device_keys
        self.connections = 0
        self.received = 0
        self.bytes = 0
        self.duplicates = 0
        self.rejects = RejectLog(log, "alarm connection")
        self.errors = self.rejects.counts  # reason -> count
        self._streams: set[IOStream] = set()

    async def handle_stream(self, stream: IOStream, address: tuple) -> None:
        self.connections += 1
        self._streams.add(stream)
        keys = self.device_keys
        receiver = AlarmReceiver(
            dead_after=self.dead_after, frame_timeout=self.frame_timeout,
            provisioned=self.provisioned, now=self.clock.now(),
            key_for=None if keys is None else (
                lambda device_id, key_id: keys.lookup(device_id, key_id, self.clock.now())),
            challenge=None if keys is None else secrets.token_bytes(32))
        bed: int | None = None
        source = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)
        watchdog = asyncio.ensure_future(self._watch(stream, receiver, source))
        try:
            while True:
                data = await stream.read_bytes(65536, partial=True)
                self.bytes += len(data)
                now = self.clock.now()
                events = receiver.receive_data(data, now)
                for ev in events:
                    if isinstance(ev, Hello):
                        bed = ev.bed
                        self.on_connection(bed, True)
                    elif isinstance(ev, AlarmMessage):
                        self.received += 1
                        if self.journal.record(ev, now):
                            self.on_alarm(ev)
                        else:
                            self.duplicates += 1
                        receiver.confirm(ev.alarm_id, now)
                out = receiver.data_to_send(now)
                if out:
                    await stream.write(out)
                if len(events) > 1 and self.frames_per_second > 0:
                    # a flood of frames: read no further for a while; TCP holds the rest back
                    await asyncio.sleep(len(events) / self.frames_per_second)
        except StreamClosedError:
            if receiver.pending_bytes and not watchdog.done():
                self.rejects.reject("disconnect_mid_frame", f"closed in the middle of a frame "
                                    f"({receiver.pending_bytes} bytes pending)", source,
                                    self.clock.now())
        except RemoteProtocolError as exc:
            self.rejects.reject(exc.reason, str(exc), source, self.clock.now())
            await self._refuse(stream, str(exc))
        except (LocalProtocolError, ValueError) as exc:  # e.g. the journal refusing a value
            self.rejects.reject("refused", str(exc), source, self.clock.now())
            await self._refuse(stream, str(exc))
        finally:
            watchdog.cancel()
            self._streams.discard(stream)
            stream.close()
            if bed is not None:
                self.on_connection(bed, False)

    async def _refuse(self, stream: IOStream, message: str) -> None:
        """Tell the device why, in an ERROR frame, before the connection closes."""
        text = "".join(c if c.isprintable() else "?" for c in message)[:MAX_ERROR] or "refused"
        with contextlib.suppress(StreamClosedError, LocalProtocolError):
            await asyncio.wait_for(stream.write(encode_alarm_frame(Error(text))), 1.0)

    async def _watch(self, stream: IOStream, receiver: AlarmReceiver, source: str) -> None:
        """Close the connection when the receiver says it is dead (silent, or half a frame)."""
        period = min(self.dead_after, self.frame_timeout) / 4
        while not stream.closed():
            await asyncio.sleep(period)
            now = self.clock.now()
            reason = receiver.is_dead(now)
            if reason is not None:
                self.rejects.reject("timeout", reason, source, now)
                await self._refuse(stream, reason)
                stream.close()
                return

    def close_all(self) -> None:
        for stream in list(self._streams):
            stream.close()

    def counters(self) -> dict:
        return {"connections": self.connections, "open": len(self._streams),
                "received": self.received, "bytes": self.bytes,
                "duplicates": self.duplicates, "errors": dict(self.errors),
                "errors_total": self.rejects.total,
                "journaled": self.journal.count()}
