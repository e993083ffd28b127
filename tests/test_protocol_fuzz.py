"""Round trips with hypothesis, and 100,000+ random and mutated inputs: the decoders return a
message or raise their one error type, and nothing else, ever."""

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies import messages
from vitalsim.protocol.alarm_channel import FrameDecoder, RemoteProtocolError
from vitalsim.protocol.json_codec import decode_json, encode_json
from vitalsim.protocol.telemetry import (
    CHANNELS,
    MAX_DATAGRAM,
    NumericsMessage,
    TelemetryError,
    WaveMessage,
    decode,
    encode,
)


@settings(max_examples=400, deadline=None)
@given(messages, st.one_of(st.none(), st.binary(min_size=1, max_size=32)))
def test_binary_round_trip(msg, key):
    data = encode(msg, key=key)
    assert len(data) <= MAX_DATAGRAM
    back = decode(data, keys={1: key} if key else None)
    assert back == msg
    assert encode(back, key=key) == data


@settings(max_examples=300, deadline=None)
@given(messages)
def test_json_round_trip(msg):
    assert decode_json(encode_json(msg)) == msg


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    kind = rng.randrange(5)
    if kind == 0 and b:  # flip bits
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif kind == 1:  # cut short
        del b[rng.randrange(len(b) + 1):]
    elif kind == 2:  # extra bytes
        b += rng.randbytes(rng.randint(1, 16))
    elif kind == 3 and b:  # overwrite a span
        i = rng.randrange(len(b))
        b[i:i + 4] = rng.randbytes(4)
    else:  # splice two datagrams
        b = b[: rng.randrange(len(b) + 1)] + data[rng.randrange(len(data) + 1):]
    return bytes(b)


def corpus(rng: random.Random) -> list[bytes]:
    out = []
    for i in range(40):
        n = NumericsMessage(1000 + i, i, i * 7, 1.7e9 + i, i % 8, 70.0 + i, 97.0, 14.0, 36.8)
        w = WaveMessage(1000 + i, i, i, 1.7e9, 0, CHANNELS[i % 3], 250, i * 63,
                        np.arange(-i, 63 - i, dtype=np.int16))
        out += [encode(n), encode(w), encode(n, key=b"k", key_id=1), encode(w, key=b"k")]
    return out


def test_100k_mutated_and_random_datagrams_only_ever_raise_telemetry_error():
    rng = random.Random(20261124)
    seeds = corpus(rng)
    outcomes = {"decoded": 0, "rejected": 0}
    reasons = set()
    for i in range(100_000):
        if i % 4 == 0:
            data = rng.randbytes(rng.randint(0, 80))
        else:
            data = mutate(rng, rng.choice(seeds))
        try:
            decode(data, keys={1: b"k"})
            outcomes["decoded"] += 1
        except TelemetryError as exc:
            outcomes["rejected"] += 1
            reasons.add(exc.reason)
    assert outcomes["rejected"] > 50_000, outcomes
    assert {"short", "bad_magic", "length", "bad_tag"} <= reasons, reasons


def test_20k_mutated_json_datagrams_only_ever_raise_telemetry_error():
    rng = random.Random(7)
    seeds = [encode_json(decode(d)) for d in corpus(rng) if d[5] == 0]
    rejected = 0
    for _ in range(20_000):
        try:
            decode_json(mutate(rng, rng.choice(seeds)))
        except TelemetryError:
            rejected += 1
    assert rejected > 10_000


def test_20k_random_alarm_streams_only_ever_raise_remote_protocol_error():
    rng = random.Random(11)
    errors = 0
    for _ in range(20_000):
        decoder = FrameDecoder()
        data = rng.randbytes(rng.randint(0, 64))
        try:
            for cut in range(0, len(data), rng.randint(1, 8)):
                decoder.feed(data[cut:cut + 8])
        except RemoteProtocolError:
            errors += 1
        assert decoder.pending <= 4 + 16 * 1024
    assert errors > 1_000
