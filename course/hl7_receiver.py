"""The hospital's interface engine, small: an MLLP listener that answers HL7 v2 and keeps a record.

It stands where a real hospital's integration engine would, for the labs and the tests:

- it answers each message with ``ACK`` (``ORA^R41`` for an alarm's ``ORU^R40``), AA unless told
  otherwise: :meth:`answer_next` makes it answer AE or AR to the next messages, as a real engine
  does when its database is down or a message breaks its rules;
- :meth:`stall` makes it read and record but answer nothing (a hung engine), :meth:`reset`
  cuts every connection with a TCP reset (an engine restarting);
- :meth:`frame` is everything it received as a pandas DataFrame: when, the control id, the
  message type, the bed, the alarm and its phase, whether the control id was seen before (a
  re-send), and what it answered.

Bytes that are not MLLP or HL7 are recorded with the reason, answered AR where a control id
can be read, and the connection closed; other connections carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from dataclasses import dataclass, field

import pandas as pd

from server import hl7_messages
from vitalsim.protocol.alarm_channel import RemoteProtocolError
from vitalsim.protocol.mllp import MllpDeframer, frame

COLUMNS = ("received_at", "control_id", "type", "bed", "alarm_id", "phase", "duplicate",
           "answer", "error")


@dataclass
class Received:
    received_at: float
    control_id: str
    type: str
    bed: int | None
    alarm_id: str
    phase: str
    duplicate: bool
    answer: str  # AA | AE | AR | "" (stalled: not answered)
    error: str = ""
    text: str = field(default="", repr=False)


class Hl7Receiver:
    """``async with Hl7Receiver() as receiver:``, or ``await start()`` / ``await stop()``.
    Listens on 127.0.0.1, port 0 (any free port) unless told otherwise: see ``port``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 max_message: int = 1 << 20) -> None:
        self.host, self.port = host, port
        self.max_message = max_message
        self.received: list[Received] = []
        self.connections = 0
        self.stalled = False
        self._answers: list[tuple[str, str]] = []  # (code, text) for the next messages
        self._seen: set[str] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._count = 0

    async def __aenter__(self) -> Hl7Receiver:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> Hl7Receiver:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self.reset()
            await self._server.wait_closed()
            self._server = None

    @property
    def target(self) -> tuple[str, int]:
        """(host, port): what the station's ``hl7_target`` is set to."""
        return self.host, self.port

    # -- what the engine is told to do -------------------------------------------------------

    def answer_next(self, code: str, count: int = 1, text: str = "") -> None:
        """Answer the next ``count`` messages with ``code`` (AE or AR; AA to undo), and the
        text an engine gives in its ERR segment."""
        if code not in hl7_messages.ACK_CODES:
            raise ValueError(f"answer code {code!r}; expected one of {hl7_messages.ACK_CODES}")
        if count < 1:
            raise ValueError(f"count={count}; expected at least 1")
        self._answers += [(code, text or f"the engine was told to answer {code}")] * count

    def stall(self) -> None:
        """Read and record, answer nothing, until :meth:`resume`."""
        self.stalled = True

    def resume(self) -> None:
        self.stalled = False

    def reset(self) -> int:
        """Cut every open connection with a TCP reset (RST): what an engine that crashes
        leaves the sender. The count cut."""
        writers, self._writers = self._writers, set()
        for writer in writers:
            sock = writer.get_extra_info("socket")
            with contextlib.suppress(OSError):
                if sock is not None:  # linger 0: close() sends RST, not FIN
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        return len(writers)

    # -- what it got -------------------------------------------------------------------------

    def frame(self) -> pd.DataFrame:
        """Everything received, one row per message, oldest first."""
        rows = [{c: getattr(r, c) for c in COLUMNS} for r in self.received]
        return pd.DataFrame(rows, columns=list(COLUMNS))

    def messages(self, kind: str | None = None) -> list[str]:
        """The texts received (of one type, e.g. ``"ORU^R40"``), segments separated by CR."""
        return [r.text for r in self.received if kind is None or r.type == kind]

    def control_ids(self, kind: str | None = None) -> list[str]:
        return [r.control_id for r in self.received if kind is None or r.type == kind]

    # -- the connection ----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        deframer = MllpDeframer(self.max_message)
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    deframer.end_of_stream()
                    break
                for raw in deframer.feed(data):
                    answer = self._take(raw)
                    if answer is not None:
                        writer.write(frame(answer.encode("utf-8")))
                await writer.drain()
        except RemoteProtocolError as exc:
            self._record_error(f"not MLLP: {exc}", getattr(exc, "data", b""))
        except (ConnectionError, OSError):
            pass  # reset by us or by the station: nothing more to read
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()

    def _take(self, raw: bytes) -> str | None:
        """Record one message and make its answer (None: stalled)."""
        now = time.time()
        try:
            msg = hl7_messages.parse(raw)
            control_id = hl7_messages.control_id(msg)
            kind = hl7_messages.message_type(msg)
        except (ValueError, KeyError, IndexError) as exc:
            self._record_error(str(exc), raw)
            return None
        pv1 = _segment(msg, "PV1")
        bed = _int(str(pv1(3)(1)(3))) if pv1 is not None and len(pv1) > 3 else None
        alarm_id = phase = ""
        if kind == "ORU^R40":
            obr = _segment(msg, "OBR")
            alarm_id = str(obr(3)(1)(1)) if obr is not None and len(obr) > 3 else ""
            for obx in msg.segments("OBX"):
                if str(obx(3)(1)(2)) == "MDC_ATTR_EVENT_PHASE":
                    phase = str(obx(5))
        duplicate = control_id in self._seen
        self._seen.add(control_id)
        code, text = ("AA", "")
        if not self.stalled and self._answers:
            code, text = self._answers.pop(0)
        self.received.append(Received(now, control_id, kind, bed, alarm_id, phase, duplicate,
                                      "" if self.stalled else code, text=msg_text(raw)))
        if self.stalled:
            return None
        self._count += 1
        return hl7_messages.ack_message(raw.decode("utf-8"), code, text,
                                        control_id=f"IE-{self._count}", at=now)

    def _record_error(self, reason: str, raw: bytes) -> None:
        self.received.append(Received(time.time(), "", "", None, "", "", False, "",
                                      error=reason, text=raw[:200].decode("utf-8", "replace")))


def msg_text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _segment(msg, name: str):
    try:
        return msg.segment(name)
    except KeyError:
        return None


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None
