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

Bytes that are not MLLP are recorded with the reason and the connection closed. A framed
message that is not HL7 v2 or breaks its rules (not UTF-8, no MSH, an MSH-9 with no trigger
event, a PV1-3 with no bed, an OBX with no OBX-3...) is recorded with a reason naming what was
wrong and answered AR when its control id (MSH-10) can be read, and the connection carries on;
when no control id can be read there is nothing to answer, so the connection is closed, the
reason recorded. Other connections carry on whatever one sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
import time
from collections import deque
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
        # [code, text, how many more messages] for the next messages, oldest first
        self._answers: deque[list] = deque()
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
        if not isinstance(count, int) or isinstance(count, bool):
            raise TypeError(f"count={count!r}; expected a whole number of messages")
        if count < 1:
            raise ValueError(f"count={count}; expected at least 1")
        # a count, not a list of answers: answer_next("AE", 10**8) costs no more than 1
        self._answers.append([code, text or f"the engine was told to answer {code}", count])

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
                frames = deframer.feed(data)
                for number, raw in enumerate(frames):
                    answer, close = self._take(raw)
                    if answer is not None:
                        writer.write(frame(answer.encode("utf-8")))
                    if close:
                        for unread in frames[number + 1:]:
                            self._record_error("not read: the connection was closed after a "
                                               "message with no control id", unread)
                        await writer.drain()
                        return
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

    def _take(self, raw: bytes) -> tuple[str | None, bool]:
        """Record one message and make its answer: (the answer, None when stalled or there
        is no control id to answer; whether to close the connection)."""
        now = time.time()
        try:
            read = _read(raw)
        except Malformed as exc:
            return self._refuse(now, raw, exc)
        except Exception as exc:  # noqa: BLE001 - an engine records what it cannot read
            return self._refuse(now, raw, Malformed(
                f"the engine could not read it ({type(exc).__name__}: {str(exc)[:80]})",
                *_raw_fields(raw)))
        control_id, kind, bed, alarm_id, phase, text = read
        duplicate = control_id in self._seen
        self._seen.add(control_id)
        code, answer_text = ("AA", "")
        if not self.stalled and self._answers:
            code, answer_text = self._next_answer()
        self.received.append(Received(now, control_id, kind, bed, alarm_id, phase, duplicate,
                                      "" if self.stalled else code, text=text))
        if self.stalled:
            return None, False
        return self._answer(text, code, answer_text, now), False

    def _next_answer(self) -> tuple[str, str]:
        order = self._answers[0]
        order[2] -= 1
        if order[2] == 0:
            self._answers.popleft()
        return order[0], order[1]

    def _refuse(self, now: float, raw: bytes, exc: Malformed) -> tuple[str | None, bool]:
        """A message that breaks HL7's rules: recorded with the reason, answered AR when its
        control id can be read (the connection carries on), else the connection closed."""
        control_id, kind = exc.control_id, exc.kind
        duplicate = bool(control_id) and control_id in self._seen
        if control_id:
            self._seen.add(control_id)
        answerable = bool(control_id) and not self.stalled
        reason = exc.reason if control_id else \
            f"{exc.reason}; no control id (MSH-10) to answer: connection closed"
        self.received.append(Received(
            now, control_id, kind, exc.bed, "", "", duplicate, "AR" if answerable else "",
            error=reason, text=msg_text(raw[:self.max_message])))
        if not answerable:
            return None, not control_id
        # answered as to a message with only the MSH fields an answer needs, all readable
        event = kind.partition("^")[2]
        stub = f"MSH|^~\\&|||||||{kind.partition('^')[0] or 'ACK'}^{event}|{control_id}|P|2.6"
        return self._answer(stub, "AR", exc.reason, now), False

    def _answer(self, received: str, code: str, text: str, now: float) -> str:
        self._count += 1
        return hl7_messages.ack_message(received, code, text, control_id=f"IE-{self._count}",
                                        at=now)

    def _record_error(self, reason: str, raw: bytes) -> None:
        self.received.append(Received(time.time(), "", "", None, "", "", False, "",
                                      error=reason, text=raw[:200].decode("utf-8", "replace")))


class Malformed(ValueError):
    """A framed message the engine refuses: why, and what of it could be read."""

    def __init__(self, reason: str, control_id: str = "", kind: str = "",
                 bed: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.control_id, self.kind, self.bed = reason, control_id, kind, bed


# a control id the engine will put in an answer's MSA-2: printable, no HL7 delimiter
_PLAIN_ID = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,197}[\x21-\x7e])?")
_DELIMITERS = set("|^~\\&")


def _plain(text: str) -> str:
    return text if _PLAIN_ID.fullmatch(text) and not _DELIMITERS & set(text) else ""


def _raw_fields(raw: bytes) -> tuple[str, str]:
    """(MSH-10, MSH-9) of bytes python-hl7 cannot read, when they are plain text: found by
    splitting the first segment at its field separator, as an engine's fallback does."""
    first = raw.split(b"\r", 1)[0].split(b"\n", 1)[0].decode("utf-8", "replace")
    if not first.startswith("MSH|^~\\&"):
        return "", ""
    fields = first[3:].split("|")  # fields[0] is empty: MSH-1 is the separator itself
    control_id = _plain(fields[9]) if len(fields) > 9 else ""
    kind = fields[8] if len(fields) > 8 else ""
    return control_id, kind if re.fullmatch(r"[A-Z0-9]{1,3}\^[A-Z0-9]{1,3}", kind) else ""


def _part(msg, seg, number: int, component: int = 1) -> str:
    """Field ``number``'s first repetition's ``component`` of segment ``seg``, as text ("" when
    the segment is missing or too short, or the field has fewer components)."""
    if seg is None or len(seg) <= number:
        return ""
    first = str(seg(number)).split(msg.separators[2])[0]
    parts = first.split(msg.separators[3])
    return parts[component - 1] if component <= len(parts) else ""


def _read(raw: bytes) -> tuple[str, str, int | None, str, str, str]:
    """(control id, type, bed, alarm id, alarm phase, text) of a message, or :class:`Malformed`
    naming the first thing wrong with it."""
    try:
        msg = hl7_messages.parse(raw)
    except ValueError as exc:
        raise Malformed(str(exc), *_raw_fields(raw)) from None
    if not raw.startswith(b"MSH|^~\\&"):
        raise Malformed(f"MSH-1 and MSH-2 are {msg_text(raw[3:8])!r}, not HL7's delimiters "
                        "|^~\\& (the only ones this engine reads)")
    msh = msg[0]  # parse() made sure the message starts with MSH
    control_id = str(msh(10)) if len(msh) > 10 else ""  # the whole field, as MSA-2 echoes it
    readable = _plain(control_id)
    if not control_id:
        raise Malformed("MSH-10 (the control id) is empty")
    if not readable:
        raise Malformed(f"MSH-10 {control_id[:40]!r} is not a plain control id (printable, "
                        "no HL7 delimiters, no space at either end, under 200 characters)")
    kind, event = _part(msg, msh, 9, 1), _part(msg, msh, 9, 2)
    if not kind:
        raise Malformed("MSH-9 has no message type", readable)
    if not event:
        raise Malformed(f"MSH-9 {kind[:20]!r} has no trigger event (e.g. ORU^R01)", readable,
                        kind if re.fullmatch(r"[A-Z0-9]{1,3}", kind) else "")
    if not re.fullmatch(r"[A-Z0-9]{1,3}", kind) or not re.fullmatch(r"[A-Z0-9]{1,3}", event):
        raise Malformed(f"MSH-9 {kind[:20] + '^' + event[:20]!r} is not a message type and "
                        "trigger event (three letters or digits each)", readable)
    kind = f"{kind}^{event}"
    pv1 = _segment(msg, "PV1")
    bed = None
    if pv1 is not None:
        bed = _int(_part(msg, pv1, 3, 3))
        if bed is None:
            raise Malformed("PV1-3 has no bed (its third component, e.g. WARD^^2)", readable,
                            kind)
    alarm_id = phase = ""
    if kind == "ORU^R40":
        alarm_id = _part(msg, _segment(msg, "OBR"), 3, 1)
        for number, obx in enumerate(_segments(msg, "OBX"), start=1):
            if len(obx) <= 3:
                raise Malformed(f"OBX #{number} has no OBX-3 (the observation identifier)",
                                readable, kind, bed)
            if _part(msg, obx, 3, 2) == "MDC_ATTR_EVENT_PHASE":
                phase = _part(msg, obx, 5)
    return readable, kind, bed, alarm_id, phase, msg_text(raw)


def msg_text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _segments(msg, name: str) -> list:
    """The segments named ``name`` (python-hl7's own lookup trips over an empty segment)."""
    return [seg for seg in msg if len(seg) and seg[0] and str(seg[0]) == name]


def _segment(msg, name: str):
    found = _segments(msg, name)
    return found[0] if found else None


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None
