"""The TCP alarm channel, sans-I/O: framing plus the sender's and the receiver's state machines.

TCP delivers a byte stream, not messages, and it says nothing about whether the *application* at the
other end stored what it received. So the alarm channel adds, on top of TCP:

- **framing**: each frame is ``length u32 | type u8 | payload`` (payload: compact UTF-8
  JSON), with a maximum frame size. A length above it closes the connection: it is never allocated;
- **application-level ACKs**: the station ACKs an alarm only once it has journaled it;
- **an outbox** on the device: every alarm waits there until ACKed, and all of it is re-sent after a
  reconnect (at-least-once delivery);
- **dedup by alarm id** at the station, so that at-least-once plus idempotence gives exactly once;
- **heartbeats**, so that a silent dead peer is noticed, and back-off between reconnects;
- **authentication** of each connection, when the station asks for it: it answers a HELLO
  with a CHALLENGE (a fresh random nonce, which the I/O glue passes in), and the device proves
  it holds its key with an AUTH frame, an HMAC of the nonce and its identity. Until then the
  connection is nobody's: no alarm is taken, and the real device's link is not touched.

Nothing here touches a socket or reads a clock: callers pass ``now`` and move bytes themselves.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import math
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass

from ..keys import KeyRefused

PROTOCOL_VERSION = 1
MAX_FRAME = 16 * 1024
FRAME_HEAD = struct.Struct("!IB")

PRIORITIES = ("low", "medium", "high")
STATES = ("raised", "updated", "cleared")


class ProtocolError(Exception):
    """Base of the alarm channel's errors."""


class LocalProtocolError(ProtocolError):
    """We were asked to do something the protocol does not allow (a bug on our side)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow; the connection should be closed.

    ``reason`` is a short stable word for counting (``length``, ``bad_type``, ``bad_json``,
    ``bad_value``, ``order``, ``bad_version``, ``unknown_device``, ``timeout``); the message
    says exactly what was wrong, and goes back to the peer in an ERROR frame."""

    def __init__(self, message: str, reason: str = "protocol") -> None:
        super().__init__(message)
        self.reason = reason


class FrameType(enum.IntEnum):
    HELLO = 1
    ALARM = 2
    ACK = 3
    HEARTBEAT = 4
    ERROR = 5
    CHALLENGE = 6
    AUTH = 7


@dataclass(frozen=True)
class Hello:
    """First frame of a device on a new connection: who it is and which protocol it speaks."""

    device_id: int
    bed: int
    version: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class AlarmMessage:
    """An alarm event. ``alarm_id`` is unique per device and identifies the event (for dedup)."""

    alarm_id: str
    device_id: int
    bed: int
    condition: str
    priority: str
    state: str
    value: float | None
    limit: float | None
    timestamp: float
    #: the numeric the alarm is about, as the station's bed summary names it ("hr", "spo2",
    #: "abp_map", ...), so the station can show its live value; None for rhythm alarms and
    #: apnoea. Optional on the wire: absent means None
    parameter: str | None = None
    #: raised while the monitor flagged motion artefact: possibly a false alarm. Optional on
    #: the wire: absent means false
    artefact: bool = False

    def __post_init__(self) -> None:
        if self.priority not in PRIORITIES:
            raise LocalProtocolError(f"priority {self.priority!r} is not one of {PRIORITIES}")
        if self.state not in STATES:
            raise LocalProtocolError(f"state {self.state!r} is not one of {STATES}")


@dataclass(frozen=True)
class Ack:
    """The station has stored alarm ``alarm_id``; the device may drop it from its outbox."""

    alarm_id: str


@dataclass(frozen=True)
class Heartbeat:
    """Proof of life on an otherwise quiet connection."""

    sent_at: float


@dataclass(frozen=True)
class Error:
    """The station refuses what the device sent, and says why, before closing the connection."""

    error: str


@dataclass(frozen=True)
class Challenge:
    """The station's answer to a HELLO when it authenticates devices: prove you hold your key,
    over this nonce (64 hex digits, fresh for every connection, so an AUTH recorded from an
    earlier connection proves nothing on this one)."""

    nonce: str


@dataclass(frozen=True)
class Auth:
    """The device's answer to a CHALLENGE: ``mac`` is :func:`auth_mac` under key ``key_id``."""

    key_id: int
    mac: str


Event = Hello | AlarmMessage | Ack | Heartbeat | Error | Challenge | Auth

_TYPE_OF = {Hello: FrameType.HELLO, AlarmMessage: FrameType.ALARM, Ack: FrameType.ACK,
            Heartbeat: FrameType.HEARTBEAT, Error: FrameType.ERROR,
            Challenge: FrameType.CHALLENGE, Auth: FrameType.AUTH}
_CLASS_OF = {v: k for k, v in _TYPE_OF.items()}


def encode_alarm_frame(event: Event) -> bytes:
    """One event as one frame on the wire (strict JSON: a NaN is refused here, never sent)."""
    try:
        payload = json.dumps(asdict(event), separators=(",", ":"), allow_nan=False).encode()
    except (ValueError, UnicodeEncodeError) as exc:
        raise LocalProtocolError(f"cannot encode {type(event).__name__}: {exc}") from None
    if FRAME_HEAD.size - 4 + len(payload) > MAX_FRAME:
        raise LocalProtocolError(f"frame of {len(payload)} bytes exceeds MAX_FRAME={MAX_FRAME}")
    return FRAME_HEAD.pack(1 + len(payload), _TYPE_OF[type(event)]) + payload


def auth_mac(key: bytes, nonce: str, device_id: int, bed: int) -> str:
    """The proof an AUTH frame carries: HMAC-SHA256 under the device's key of the station's
    nonce and the identity the HELLO claimed, as 64 hex digits. The identity is inside, so a
    proof for one device and bed is worth nothing for another."""
    message = f"vitalsim alarm channel AUTH v{PROTOCOL_VERSION}|{nonce}|{device_id}|{bed}"
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def _not_json(token: str) -> None:
    raise ValueError(f"{token} is not JSON (a value must be a finite number)")


#: the type of each field of each frame: (types allowed, may it be null)
_TEXT, _INT, _NUMBER, _BOOL = (str,), (int,), (int, float), (bool,)
#: fields a frame may leave out (added after the frame was first defined; absent = default)
_OPTIONAL: dict[type, frozenset[str]] = {AlarmMessage: frozenset({"parameter", "artefact"})}
_SCHEMA: dict[type, dict[str, tuple[tuple[type, ...], bool]]] = {
    Hello: {"device_id": (_INT, False), "bed": (_INT, False), "version": (_INT, False)},
    AlarmMessage: {"alarm_id": (_TEXT, False), "device_id": (_INT, False), "bed": (_INT, False),
                   "condition": (_TEXT, False), "priority": (_TEXT, False),
                   "state": (_TEXT, False), "value": (_NUMBER, True),
                   "limit": (_NUMBER, True), "timestamp": (_NUMBER, False),
                   "parameter": (_TEXT, True), "artefact": (_BOOL, False)},
    Ack: {"alarm_id": (_TEXT, False)},
    Heartbeat: {"sent_at": (_NUMBER, False)},
    Error: {"error": (_TEXT, False)},
    Challenge: {"nonce": (_TEXT, False)},
    Auth: {"key_id": (_INT, False), "mac": (_TEXT, False)},
}
MAX_TEXT = 128  # characters in an id or a condition
MAX_ERROR = 1024  # characters in an ERROR frame's message
MAX_NUMBER = 1e12  # magnitude of any number in a frame (a time in seconds fits easily)


def _check_fields(cls: type, fields: dict) -> None:
    """Every field present, of its type, finite and in range; nothing else. Raises
    RemoteProtocolError naming the field."""
    schema = _SCHEMA[cls]
    name = cls.__name__
    optional = _OPTIONAL.get(cls, frozenset())
    missing = [k for k in schema if k not in fields and k not in optional]
    extra = [k for k in fields if k not in schema]
    if missing or extra:
        raise RemoteProtocolError(f"bad {name} frame: missing {missing}, unknown {extra}; "
                                  f"expected exactly {list(schema)}", "bad_value")
    for key, (types, nullable) in schema.items():
        if key not in fields:
            continue  # an optional field left out
        value = fields[key]
        if value is None and nullable:
            continue
        if (isinstance(value, bool) and types != _BOOL) or not isinstance(value, types):
            raise RemoteProtocolError(
                f"bad {name} frame: {key}={value!r:.60} is a {type(value).__name__}, expected "
                f"{' or '.join(t.__name__ for t in types)}{' or null' if nullable else ''}",
                "bad_value")
        longest = MAX_ERROR if cls is Error else MAX_TEXT
        if isinstance(value, str) and not (0 < len(value) <= longest and value.isprintable()):
            raise RemoteProtocolError(f"bad {name} frame: {key} must be 1..{longest} printable "
                                      "characters", "bad_value")
        if isinstance(value, int) and not isinstance(value, bool) and types == _INT \
                and not 0 <= value < 2**32:
            raise RemoteProtocolError(f"bad {name} frame: {key}={value} is outside 0..2**32-1",
                                      "bad_value")
        if types == _NUMBER and not (math.isfinite(value) and abs(value) <= MAX_NUMBER):
            raise RemoteProtocolError(f"bad {name} frame: {key}={value!r} is not a finite "
                                      f"number within ±{MAX_NUMBER:g}", "bad_value")


def _parse(ftype: int, payload: bytes) -> Event:
    try:
        cls = _CLASS_OF[FrameType(ftype)]
    except ValueError:
        raise RemoteProtocolError(f"unknown frame type {ftype}", "bad_type") from None
    try:
        fields = json.loads(payload, parse_constant=_not_json)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        if "is not JSON" in str(exc):
            raise RemoteProtocolError(f"bad {cls.__name__} frame: {exc}: NaN and Infinity "
                                      "must be finite", "bad_value") from None
        raise RemoteProtocolError(f"{cls.__name__} frame payload is not JSON: {exc}",
                                  "bad_json") from None
    except RecursionError:
        raise RemoteProtocolError(f"{cls.__name__} frame payload is nested too deeply",
                                  "bad_json") from None
    if not isinstance(fields, dict):
        raise RemoteProtocolError(f"{cls.__name__} frame payload is not a JSON object",
                                  "bad_json")
    _check_fields(cls, fields)
    try:
        return cls(**fields)
    except (TypeError, LocalProtocolError) as exc:
        raise RemoteProtocolError(f"bad {cls.__name__} frame: {exc}", "bad_value") from None


class FrameDecoder:
    """Turns a byte stream, fed in arbitrary pieces, into events.

    It buffers at most one frame (``MAX_FRAME``). A frame cut in the middle stays buffered until
    the rest arrives; :attr:`pending` tells how many bytes wait, so that a disconnect in the middle
    of a frame can be reported.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._max = max_frame

    @property
    def pending(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Event]:
        self._buf += data
        events: list[Event] = []
        while len(self._buf) >= 4:
            (length,) = struct.unpack_from("!I", self._buf)
            if length == 0 or length > self._max:
                raise RemoteProtocolError(
                    f"frame length {length} is outside 1..{self._max}; closing the connection",
                    "length")
            if len(self._buf) < 4 + length:
                break
            ftype = self._buf[4]
            payload = bytes(self._buf[5 : 4 + length])
            del self._buf[: 4 + length]
            events.append(_parse(ftype, payload))
        return events


class SenderState(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTED = "connected"


class AlarmSender:
    """The device's side: an outbox of unACKed alarms, heartbeats and reconnect back-off.

    Usage from I/O glue: on connect, write ``connection_made(now)``; to raise an alarm, write
    ``send_alarm(alarm, now)``; feed received bytes to ``receive_data``; call ``tick(now)``
    periodically and write what it returns; if ``is_dead(now)`` close the socket; on close call
    ``connection_lost(now)`` and wait ``reconnect_delay()`` before trying again.
    """

    def __init__(self, device_id: int, bed: int, *, heartbeat_interval: float = 2.0,
                 dead_after: float = 6.0, ack_timeout: float = 5.0,
                 backoff_initial: float = 0.25, backoff_max: float = 8.0,
                 key: bytes | None = None, key_id: int = 1) -> None:
        self.device_id = device_id
        self.bed = bed
        # with a key the device expects a CHALLENGE after its HELLO, and sends nothing else
        # until it has answered it (see receive_data)
        self.key = key
        self.key_id = key_id
        self.authenticated = False
        self._outgoing = bytearray()
        self.heartbeat_interval = heartbeat_interval
        self.dead_after = dead_after
        self.ack_timeout = ack_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.state = SenderState.DISCONNECTED
        self.outbox: OrderedDict[str, AlarmMessage] = OrderedDict()
        self._sent_at: dict[str, float] = {}  # alarm id -> when it last went on this connection
        self._decoder = FrameDecoder()
        self._last_heard = 0.0
        self._last_sent = 0.0
        self._failures = 0
        self.sent_frames = 0
        self.resent = 0
        self.acked = 0

    def connection_made(self, now: float) -> bytes:
        """A new connection: say HELLO, then re-send everything still unacknowledged."""
        if self.state is SenderState.CONNECTED:
            raise LocalProtocolError("connection_made while already connected")
        self.state = SenderState.CONNECTED
        self._decoder = FrameDecoder()
        self._last_heard = self._last_sent = now
        self._outgoing = bytearray()
        self._sent_at = {}
        hello = encode_alarm_frame(Hello(self.device_id, self.bed))
        self.authenticated = self.key is None
        self.sent_frames += 1
        if not self.authenticated:  # the outbox waits for the CHALLENGE
            return hello
        return hello + self._resend_outbox(now)

    def _resend_outbox(self, now: float) -> bytes:
        out = []
        for alarm in self.outbox.values():
            out.append(encode_alarm_frame(alarm))
            self._sent_at[alarm.alarm_id] = now
            self.resent += 1
        self.sent_frames += len(out)
        return b"".join(out)

    def send_alarm(self, alarm: AlarmMessage, now: float) -> bytes:
        """Put an alarm in the outbox; return its frame if connected (else it waits)."""
        if alarm.alarm_id in self.outbox:
            raise LocalProtocolError(f"alarm id {alarm.alarm_id!r} is already in the outbox")
        self.outbox[alarm.alarm_id] = alarm
        if self.state is not SenderState.CONNECTED or not self.authenticated:
            return b""
        self._last_sent = now
        self._sent_at[alarm.alarm_id] = now
        self.sent_frames += 1
        return encode_alarm_frame(alarm)

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        events = self._decoder.feed(data)
        self._last_heard = now
        for ev in events:
            if isinstance(ev, Ack):
                self._sent_at.pop(ev.alarm_id, None)
                if self.outbox.pop(ev.alarm_id, None) is not None:
                    self.acked += 1
                    self._failures = 0
            elif isinstance(ev, Error):
                raise RemoteProtocolError(f"the station refused: {ev.error}", "refused")
            elif isinstance(ev, Challenge):
                if self.key is None:
                    raise RemoteProtocolError("the station asks this device to authenticate, "
                                              "and it has no key (see vitalsim.keys)", "refused")
                if self.authenticated:
                    raise RemoteProtocolError("a second CHALLENGE on one connection", "order")
                self._outgoing += encode_alarm_frame(Auth(self.key_id, auth_mac(
                    self.key, ev.nonce, self.device_id, self.bed)))
                self.sent_frames += 1
                self.authenticated = True
                self._outgoing += self._resend_outbox(now)
            elif not isinstance(ev, Heartbeat):
                raise RemoteProtocolError(f"a station does not send {type(ev).__name__} frames",
                                          "bad_type")
        return events

    def tick(self, now: float) -> bytes:
        """Bytes to write now: the answer to a CHALLENGE (and the outbox after it), or a
        heartbeat when the line has been quiet for a while."""
        if self._outgoing:
            data, self._outgoing = bytes(self._outgoing), bytearray()
            self._last_sent = now
            return data
        if self.state is SenderState.CONNECTED and self.authenticated \
                and now - self._last_sent >= self.heartbeat_interval:
            self._last_sent = now
            self.sent_frames += 1
            return encode_alarm_frame(Heartbeat(now))
        return b""

    def is_dead(self, now: float) -> bool:
        """True when the connection must be treated as lost: the station has been silent for
        ``dead_after``, or an alarm sent on this connection waited ``ack_timeout`` for its ACK
        (the station may be up but not storing: reconnecting is how the outbox gets re-sent)."""
        if self.state is not SenderState.CONNECTED:
            return False
        if now - self._last_heard > self.dead_after:
            return True
        oldest = min(self._sent_at.values(), default=None)
        return oldest is not None and now - oldest > self.ack_timeout

    def connection_lost(self, now: float) -> None:
        self.state = SenderState.DISCONNECTED
        self._failures += 1

    def reconnect_delay(self) -> float:
        """Exponential back-off: initial, doubling per consecutive failure, capped."""
        n = max(self._failures - 1, 0)
        return min(self.backoff_initial * (2**n), self.backoff_max)


class AlarmReceiver:
    """The station's side of one connection: parse frames, dedup alarms, ACK what is stored.

    ``receive_data`` returns every new event. An alarm already confirmed on this connection is not
    returned again; its ACK is re-sent at once (the device lost the first one). Alarms that survive
    a station restart are deduplicated by the journal, which reports whether an id was new.
    """

    def __init__(self, *, heartbeat_interval: float = 2.0, remember: int = 10_000,
                 dead_after: float = 6.0, frame_timeout: float = 5.0,
                 provisioned: Callable[[int, int], bool] | None = None,
                 now: float = 0.0, key_for: Callable[[int, int], bytes] | None = None,
                 challenge: bytes | None = None) -> None:
        """``key_for(device_id, key_id)`` (a :meth:`vitalsim.keys.KeyFile.lookup` at the
        station's time) turns authentication on: a HELLO is answered with a CHALLENGE over
        ``challenge`` (fresh random bytes per connection, from the caller: this class draws no
        randomness), and the connection belongs to the device only once its AUTH verifies."""
        if key_for is not None and (challenge is None or len(challenge) < 16):
            raise LocalProtocolError("authentication needs a challenge of 16 random bytes or more")
        self._key_for = key_for
        self._nonce = challenge.hex() if challenge is not None else ""
        self._claimed: Hello | None = None  # a HELLO waiting for its AUTH
        self.dead_after = dead_after
        self.frame_timeout = frame_timeout
        self._provisioned = provisioned
        self._last_heard = now
        self._partial_since: float | None = None
        self._decoder = FrameDecoder()
        self.hello: Hello | None = None
        self._confirmed: OrderedDict[str, None] = OrderedDict()
        self._remember = remember
        self._outgoing = bytearray()
        self.heartbeat_interval = heartbeat_interval
        self._last_sent = 0.0
        self.duplicates = 0

    @property
    def pending_bytes(self) -> int:
        return self._decoder.pending

    def is_dead(self, now: float) -> str | None:
        """Why this connection must be closed now, or None: nothing heard for ``dead_after``
        seconds (a live device sends a heartbeat every ``heartbeat_interval`` at least), or
        half a frame waiting for its rest for ``frame_timeout``."""
        if now - self._last_heard > self.dead_after:
            return f"nothing heard for {now - self._last_heard:.1f} s (dead after " \
                   f"{self.dead_after:g} s)"
        if self._partial_since is not None and now - self._partial_since > self.frame_timeout:
            return f"half a frame ({self.pending_bytes} bytes) waited " \
                   f"{now - self._partial_since:.1f} s for its rest " \
                   f"(at most {self.frame_timeout:g} s)"
        return None

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        out: list[Event] = []
        if data:
            self._last_heard = now
        events = self._decoder.feed(data)
        if not self._decoder.pending:
            self._partial_since = None
        elif self._partial_since is None or events:
            self._partial_since = now  # a new frame began
        for ev in events:
            if isinstance(ev, Hello):
                if ev.version != PROTOCOL_VERSION:
                    raise RemoteProtocolError(
                        f"device speaks alarm protocol v{ev.version}, station v{PROTOCOL_VERSION}",
                        "bad_version")
                if self._provisioned is not None and not self._provisioned(ev.device_id, ev.bed):
                    raise RemoteProtocolError(f"device {ev.device_id} is not provisioned for "
                                              f"bed {ev.bed}", "unknown_device")
                if self.hello is not None and self.hello != ev:
                    raise RemoteProtocolError("a second HELLO, for another device", "order")
                if self._key_for is None:
                    self.hello = ev
                    out.append(ev)
                elif self.hello is None:
                    if self._claimed is not None:
                        raise RemoteProtocolError("a second HELLO before AUTH", "order")
                    self._claimed = ev
                    self._outgoing += encode_alarm_frame(Challenge(self._nonce))
            elif isinstance(ev, Auth):
                if self._claimed is None or self._key_for is None or self.hello is not None:
                    raise RemoteProtocolError("AUTH is the answer to this station's CHALLENGE, "
                                              "and none is waiting", "order")
                self._authenticate(self._claimed, ev)
                self.hello, self._claimed = self._claimed, None
                out.append(self.hello)
            elif self.hello is None:
                if self._claimed is not None:
                    raise RemoteProtocolError(
                        f"{type(ev).__name__} frame before AUTH: this station authenticates "
                        "each connection (HELLO, CHALLENGE, AUTH; docs/PROTOCOL.md section 2)",
                        "unauthenticated")
                raise RemoteProtocolError(f"{type(ev).__name__} frame before HELLO", "order")
            elif isinstance(ev, AlarmMessage):
                if (ev.device_id, ev.bed) != (self.hello.device_id, self.hello.bed):
                    raise RemoteProtocolError(
                        f"ALARM for device {ev.device_id} bed {ev.bed} on the connection of "
                        f"device {self.hello.device_id} bed {self.hello.bed}", "unknown_device")
                if ev.alarm_id in self._confirmed:
                    self.duplicates += 1
                    self._outgoing += encode_alarm_frame(Ack(ev.alarm_id))
                else:
                    out.append(ev)
            elif isinstance(ev, Heartbeat):
                pass
            else:
                raise RemoteProtocolError(f"a device does not send {type(ev).__name__} frames",
                                          "bad_type")
        return out

    def _authenticate(self, hello: Hello, auth: Auth) -> None:
        """Raise unless ``auth`` proves the key of the device ``hello`` claimed to be."""
        assert self._key_for is not None
        try:
            key = self._key_for(hello.device_id, auth.key_id)
        except KeyRefused as exc:
            raise RemoteProtocolError(f"AUTH refused: {exc}", exc.reason) from None
        expected = auth_mac(key, self._nonce, hello.device_id, hello.bed)
        if not hmac.compare_digest(expected.encode(), auth.mac.encode()):
            raise RemoteProtocolError(f"AUTH refused: the proof does not verify under key id "
                                      f"{auth.key_id} of device {hello.device_id}", "bad_auth")

    def confirm(self, alarm_id: str, now: float) -> None:
        """The application has stored ``alarm_id``: queue its ACK."""
        self._confirmed[alarm_id] = None
        if len(self._confirmed) > self._remember:
            self._confirmed.popitem(last=False)
        self._outgoing += encode_alarm_frame(Ack(alarm_id))

    def data_to_send(self, now: float) -> bytes:
        """Bytes to write now: queued ACKs, or a heartbeat when the line has been quiet."""
        if not self._outgoing and now - self._last_sent >= self.heartbeat_interval:
            self._outgoing += encode_alarm_frame(Heartbeat(now))
        if self._outgoing:
            self._last_sent = now
        data, self._outgoing = bytes(self._outgoing), bytearray()
        return data
