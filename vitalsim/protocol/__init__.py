"""Wire protocols of the course, written sans-I/O: bytes in, events out, no sockets, no clock reads.

- :mod:`.telemetry`: the UDP telemetry datagram (numerics and waveform chunks).
- :mod:`.alarm_channel`: the TCP alarm channel's framing and its sender/receiver state machines.
- :mod:`.stats`: per-device reception statistics (loss, duplicates, reordering, latency, jitter).
- :mod:`.replay`: the anti-replay sliding window over (boot id, sequence number).

The byte layouts and the reasons behind them are documented in ``docs/PROTOCOL.md``.
"""

from .alarm_channel import (
    Ack,
    AlarmMessage,
    AlarmReceiver,
    AlarmSender,
    Error,
    FrameDecoder,
    Heartbeat,
    Hello,
    LocalProtocolError,
    RemoteProtocolError,
)
from .replay import ReplayWindow
from .stats import ReceiverStats
from .telemetry import (
    MAX_DATAGRAM,
    NumericsMessage,
    TelemetryError,
    WaveMessage,
    decode,
    encode,
)

__all__ = [
    "MAX_DATAGRAM",
    "Ack",
    "AlarmMessage",
    "AlarmReceiver",
    "AlarmSender",
    "Error",
    "FrameDecoder",
    "Heartbeat",
    "Hello",
    "LocalProtocolError",
    "NumericsMessage",
    "ReceiverStats",
    "RemoteProtocolError",
    "ReplayWindow",
    "TelemetryError",
    "WaveMessage",
    "decode",
    "encode",
]
