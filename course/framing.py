"""Helpers for lab 02's framing exercise: a seeded stream of alarm-channel frames, cut into the
pieces ``recv()`` might return, and what :class:`~vitalsim.protocol.FrameDecoder` makes of them.

A learner's decoder is any object with ``feed(data: bytes) -> list[tuple[int, dict]]``: the frame
type and its JSON body as a dict, for every frame that ``data`` completed. The checks feed it and
the course's own decoder the same bytes and compare.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any, Protocol

from vitalsim.protocol.alarm_channel import (
    FRAME_HEAD,
    MAX_FRAME,
    Ack,
    AlarmMessage,
    FrameDecoder,
    FrameType,
    Heartbeat,
    Hello,
    encode_alarm_frame,
)

Frame = tuple[int, dict]


def frame_type(event: Hello | AlarmMessage | Ack | Heartbeat) -> int:
    """The type byte the codec writes for ``event``: read from its own encoding, so that the
    codec's table (:mod:`vitalsim.protocol.alarm_channel`) stays the only one."""
    return FRAME_HEAD.unpack_from(encode_alarm_frame(event))[1]


class Decoder(Protocol):
    def feed(self, data: bytes) -> list[Frame]: ...


def sample_stream(alarms: int = 4, *, seed: int = 1, device_id: int = 1003,
                  bed: int = 3) -> bytes:
    """What a device writes on a new connection: HELLO, ``alarms`` ALARM frames (seeded values),
    and a HEARTBEAT, as one run of bytes."""
    rng = random.Random(seed)
    events: list[Any] = [Hello(device_id, bed)]
    t = 1_764_000_000.0
    for n in range(1, alarms + 1):
        t += rng.uniform(0.5, 3.0)
        hr = round(rng.uniform(131, 160), 1)
        events.append(AlarmMessage(f"{device_id}-{n}", device_id, bed, "HR HIGH", "high",
                                   "raised", hr, 130.0, round(t, 3)))
    events.append(Heartbeat(round(t + 2.0, 3)))
    return b"".join(encode_alarm_frame(e) for e in events)


def cut(data: bytes, *, seed: int, largest: int = 40) -> list[bytes]:
    """``data`` in seeded pieces of 1 to ``largest`` bytes, as successive reads might return it."""
    rng = random.Random(seed)
    pieces, at = [], 0
    while at < len(data):
        n = rng.randint(1, largest)
        pieces.append(data[at : at + n])
        at += n
    return pieces


def byte_by_byte(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def reference_frames(chunks: Iterable[bytes]) -> list[Frame]:
    """What the course's :class:`FrameDecoder` decodes from these reads: (type, body dict)."""
    decoder = FrameDecoder()
    return [(frame_type(ev), asdict(ev)) for chunk in chunks for ev in decoder.feed(chunk)]


def frames_from(make_decoder: Callable[[], Decoder], chunks: Iterable[bytes]) -> list[Frame]:
    """Feed a new learner's decoder the reads one by one; every frame it returned, in order,
    with the type as a plain int."""
    decoder = make_decoder()
    return [(int(ftype), body) for chunk in chunks for ftype, body in decoder.feed(chunk)]


def frames_per_read(make_decoder: Callable[[], Decoder], chunks: Iterable[bytes]) -> list[int]:
    """How many frames the decoder returned after each read."""
    decoder = make_decoder()
    return [len(decoder.feed(chunk)) for chunk in chunks]


def verdict(make_decoder: Callable[[], Decoder], data: bytes) -> str:
    """``"rejected"`` if feeding ``data`` raises, else ``"accepted, N frames"``. A stub's
    NotImplementedError is passed on, so a check reports it as not done yet."""
    try:
        frames = make_decoder().feed(data)
    except NotImplementedError:
        raise
    except Exception:
        return "rejected"
    return f"accepted, {len(frames)} frames"


def reference_verdict(data: bytes) -> str:
    """The same verdict for the course's own decoder."""
    return verdict(_Reference, data)


def header(length: int, ftype: int = FrameType.ALARM) -> bytes:
    """The first five bytes of a frame that announces ``length`` bytes (type and body)."""
    return struct.pack("!IB", length, ftype)


class _Reference:
    def __init__(self) -> None:
        self._decoder = FrameDecoder()

    def feed(self, data: bytes) -> list[Frame]:
        return [(frame_type(ev), asdict(ev)) for ev in self._decoder.feed(data)]


__all__ = ["MAX_FRAME", "byte_by_byte", "cut", "frames_from", "frames_per_read", "header",
           "reference_frames", "reference_verdict", "sample_stream", "verdict"]
