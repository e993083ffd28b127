"""The TCP alarm endpoint: Tornado streams around the sans-I/O AlarmReceiver.

For each alarm: journal first, then ACK. A broken frame, a frame over the size limit or a
disconnect in the middle of a frame is counted and logged with its reason; the connection is
closed and the listener keeps serving the others.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from tornado.iostream import IOStream, StreamClosedError
from tornado.tcpserver import TCPServer

from vitalsim.clock import Clock
from vitalsim.protocol import AlarmMessage, AlarmReceiver, Hello, RemoteProtocolError

from .journal import AlarmJournal

log = logging.getLogger("server.alarms")


class AlarmListener(TCPServer):
    def __init__(self, journal: AlarmJournal, clock: Clock, *,
                 on_alarm: Callable[[AlarmMessage], None],
                 on_connection: Callable[[int, bool], None]) -> None:
        super().__init__(max_buffer_size=1 << 20)
        self.journal = journal
        self.clock = clock
        self.on_alarm = on_alarm
        self.on_connection = on_connection
        self.connections = 0
        self.received = 0
        self.bytes = 0
        self.duplicates = 0
        self.errors: Counter[str] = Counter()
        self._streams: set[IOStream] = set()

    async def handle_stream(self, stream: IOStream, address: tuple) -> None:
        self.connections += 1
        self._streams.add(stream)
        receiver = AlarmReceiver()
        bed: int | None = None
        try:
            while True:
                data = await stream.read_bytes(65536, partial=True)
                self.bytes += len(data)
                now = self.clock.now()
                for ev in receiver.receive_data(data, now):
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
        except StreamClosedError:
            if receiver.pending_bytes:
                self.errors["disconnect_mid_frame"] += 1
                log.warning("alarm connection from %s closed in the middle of a frame "
                            "(%d bytes pending)", address, receiver.pending_bytes)
        except RemoteProtocolError as exc:
            self.errors["protocol"] += 1
            log.warning("alarm connection from %s: %s; closing it", address, exc)
        finally:
            self._streams.discard(stream)
            stream.close()
            if bed is not None:
                self.on_connection(bed, False)

    def close_all(self) -> None:
        for stream in list(self._streams):
            stream.close()

    def counters(self) -> dict:
        return {"connections": self.connections, "open": len(self._streams),
                "received": self.received, "bytes": self.bytes,
                "duplicates": self.duplicates, "errors": dict(self.errors),
                "journaled": self.journal.count()}
