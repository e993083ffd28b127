"""The telemetry datagram codec: round trips and the errors that name what was wrong."""

import numpy as np
import pytest

from vitalsim.protocol.telemetry import (
    HEADER,
    MAX_DATAGRAM,
    MAX_WAVE_SAMPLES,
    NumericsMessage,
    TelemetryError,
    WaveMessage,
    decode,
    encode,
)

NUM = NumericsMessage(1001, 1, 7, 1_700_000_000.25, 0, 72.0, 97.0, 14.0, 36.75,
                      120.0, 80.0, 93.0, 1_699_999_900.0)


def test_numerics_round_trip_keeps_every_field():
    assert decode(encode(NUM)) == NUM


def test_missing_values_round_trip_as_none():
    msg = NumericsMessage(1, 2, 3, 4.0, 1, 80.0, None, 12.0, None)
    assert decode(encode(msg)) == msg


def test_wave_round_trip_and_size_bound():
    samples = np.arange(-MAX_WAVE_SAMPLES // 2, MAX_WAVE_SAMPLES - MAX_WAVE_SAMPLES // 2,
                        dtype=np.int16)
    msg = WaveMessage(1, 2, 3, 4.0, 0, "ecg", 250, 1000, samples)
    data = encode(msg, key=b"secret")
    assert len(data) <= MAX_DATAGRAM
    assert decode(data, keys={1: b"secret"}) == msg


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: b[:10], "short"),
        (lambda b: b"XX" + b[2:], "bad_magic"),
        (lambda b: b[:2] + b"\x09" + b[3:], "bad_version"),
        (lambda b: b[:3] + b"\x07" + b[3 + 1 :], "bad_type"),
        (lambda b: b + b"\x00", "length"),
        (lambda b: b[:-1], "length"),
    ],
)
def test_bad_datagrams_raise_telemetry_error_with_reason(mutate, reason):
    with pytest.raises(TelemetryError) as info:
        decode(mutate(encode(NUM)))
    assert info.value.reason == reason


def test_tampered_signed_datagram_is_rejected():
    data = bytearray(encode(NUM, key=b"k1"))
    data[HEADER.size] ^= 0xFF
    with pytest.raises(TelemetryError) as info:
        decode(bytes(data), keys={1: b"k1"})
    assert info.value.reason == "bad_tag"


def test_unsigned_datagram_rejected_when_tag_required():
    with pytest.raises(TelemetryError) as info:
        decode(encode(NUM), require_tag=True)
    assert info.value.reason == "bad_tag"


# -- version 3: the rhythm, PVCs, ETCO2 and the arterial line ---------------------------------

V3 = NumericsMessage(1001, 1, 8, 1_700_000_001.0, 0, 182.0, 95.0, 18.0, 36.75, None, None, None,
                     None, 1_699_999_000_000_000, "vt", 7, 36.0, 18.0, 86.0, 52.0, 63.0)


def test_version_3_numerics_round_trip_with_the_rhythm_by_name():
    back = decode(encode(V3))
    assert back == V3 and back.rhythm == "vt" and back.pvc_per_min == 7
    assert len(encode(V3)) == HEADER.size + 58


def test_an_unknown_rhythm_is_refused_both_ways_naming_it():
    data = bytearray(encode(V3))
    data[HEADER.size + 56] = 200  # the rhythm byte
    with pytest.raises(TelemetryError) as err:
        decode(bytes(data))
    assert err.value.reason == "bad_rhythm" and "rhythm code 200" in str(err.value)
    with pytest.raises(TelemetryError, match="unknown rhythm 'torsades'"):
        encode(NumericsMessage(1, 1, 1, 1.0, 0, 70.0, 97.0, 14.0, 36.8, rhythm="torsades"))


def test_pvcs_not_counted_and_no_rhythm_travel_as_their_reserved_codes():
    msg = NumericsMessage(1, 1, 1, 1.0, 0x0A, 70.0, 97.0, None, 36.75)  # leads off, HR from pleth
    data = encode(msg)
    assert data[HEADER.size + 56:HEADER.size + 58] == bytes([0, 255])
    assert decode(data) == msg
    with pytest.raises(TelemetryError, match="pvc_per_min=255"):
        encode(NumericsMessage(1, 1, 1, 1.0, 0, 70.0, 97.0, 14.0, 36.8, pvc_per_min=255))


def test_the_new_wave_channels_round_trip():
    for channel in ("co2", "abp"):
        msg = WaveMessage(1, 2, 3, 4.0, 0, channel, 25, 0, np.arange(10, dtype=np.int16))
        assert decode(encode(msg)).channel == channel
