"""MLLP, HL7's Minimal Lower Layer Protocol, sans I/O: bytes in, messages out.

A message travels on TCP as ``0x0B`` (start block), the message, ``0x1C 0x0D`` (end block),
with no length anywhere: unlike the alarm channel's length prefix, the boundaries are found by
looking for the delimiters. :class:`MllpDeframer` is fed whatever ``recv`` returned (a message
cut anywhere, two in one read) and hands back each whole message; :func:`frame` wraps one.

Errors say which side is at fault (as in h11): :class:`RemoteProtocolError` for bytes the peer
sent that are not MLLP (data before a start block, a message longer than the bound, a start
block inside a message), after which the connection should be closed; the bytes up to the
error are never silently dropped, they are in the exception.
"""

from __future__ import annotations

from .alarm_channel import LocalProtocolError, RemoteProtocolError

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
#: the most a message may hold before the deframer gives up on it (HL7 messages from a monitor
#: are a few kilobytes; a peer that never sends the end block must not fill the station's memory)
DEFAULT_MAX_MESSAGE = 1 << 20


def frame(message: bytes) -> bytes:
    """One message in its MLLP envelope. Raises LocalProtocolError if the message holds a
    byte of the envelope, which the receiver would take for a boundary."""
    if START_BLOCK in message or b"\x1c" in message:
        raise LocalProtocolError("an HL7 message may not contain 0x0B or 0x1C (MLLP's "
                                 "start and end blocks)")
    return START_BLOCK + message + END_BLOCK


class MllpDeframer:
    """Feed it bytes as they come; it returns each complete message, in order."""

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.max_message = max_message
        self._buffer = bytearray()
        # "outside" (between messages), "inside" (after a start block), "end" (after 0x1C,
        # where only 0x0D may follow: an end block can be cut between two reads)
        self._state = "outside"
        self.closed = False

    @property
    def buffered(self) -> int:
        """Bytes held for a message not yet complete."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """The messages that ``data`` completes. Raises RemoteProtocolError for bytes that
        are not MLLP; the deframer is then closed and takes no more."""
        if self.closed:
            raise LocalProtocolError("the deframer is closed after an error; open a new "
                                     "connection")
        out: list[bytes] = []
        pos, size = 0, len(data)
        while pos < size:
            if self._state == "outside":
                # between messages only the start block may come (a CR or LF after an end
                # block is tolerated: some interface engines send one)
                byte = data[pos]
                if byte == 0x0B:
                    self._state = "inside"
                elif byte not in (0x0D, 0x0A):
                    self._fail(f"byte 0x{byte:02x} where a message must start with 0x0B "
                               "(MLLP start block)", bytes(data[pos:]))
                pos += 1
            elif self._state == "end":
                if data[pos] != 0x0D:
                    self._fail("0x1C not followed by 0x0D: not an MLLP end block",
                               bytes(self._buffer))
                out.append(bytes(self._buffer))
                self._buffer.clear()
                self._state = "outside"
                pos += 1
            else:
                end = data.find(b"\x1c", pos)
                stop = size if end < 0 else end
                chunk = data[pos:stop]
                if b"\x0b" in chunk:
                    self._fail("a start block (0x0B) inside a message: the end block "
                               "(0x1C 0x0D) before it is missing",
                               bytes(self._buffer) + bytes(chunk))
                if len(self._buffer) + len(chunk) > self.max_message:
                    self._fail(f"a message longer than {self.max_message} bytes without its "
                               "end block (0x1C 0x0D)", bytes(self._buffer[:64]))
                self._buffer += chunk
                pos = stop
                if end >= 0:
                    self._state = "end"
                    pos += 1
        return out

    def _fail(self, reason: str, data: bytes) -> None:
        self.closed = True
        self._buffer.clear()
        error = RemoteProtocolError(reason)
        error.data = data  # type: ignore[attr-defined]
        raise error

    def end_of_stream(self) -> None:
        """The peer closed the connection. Raises RemoteProtocolError if it left a message
        without its end block (what was received of it is in the exception's ``data``)."""
        if self._state != "outside":
            self._fail(f"connection closed inside a message ({len(self._buffer)} bytes "
                       "received, no end block 0x1C 0x0D)", bytes(self._buffer))
