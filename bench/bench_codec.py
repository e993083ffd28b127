"""Encode and decode rates of the telemetry codecs, binary against JSON, and their sizes.

    .venv/bin/python bench/bench_codec.py [--seconds 1.0]

Each figure is the best of three timed runs of at least ``--seconds``, in messages per second
of one CPU core.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from vitalsim.protocol.alarm_channel import AlarmMessage, FrameDecoder, encode_alarm_frame
from vitalsim.protocol.json_codec import decode_json, encode_json
from vitalsim.protocol.telemetry import NumericsMessage, WaveMessage, decode, encode


def rate(fn: Callable[[], object], seconds: float) -> float:
    best = 0.0
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            for _ in range(200):
                fn()
            n += 200
        best = max(best, n / elapsed)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=1.0)
    args = p.parse_args()
    numerics = NumericsMessage(1001, 1, 123456, 1_700_000_000.25, 0, 72.0, 97.0, 14.0, 36.8,
                               122.0, 78.0, 93.0, 1_699_999_900.0)
    ecg = WaveMessage(1001, 1, 123457, 1_700_000_000.25, 0, "ecg", 250, 62_500,
                      (np.sin(np.arange(63) / 5) * 1000).astype(np.int16))
    alarm = AlarmMessage("1001-4", 1001, 1, "HR HIGH", "high", "raised", 142.0, 130.0, 1.7e9)

    rows = []
    for label, msg in (("numerics", numerics), ("ecg chunk (63 samples)", ecg)):
        b, j = encode(msg), encode_json(msg)
        signed = encode(msg, key=b"ward-7-key")
        rows.append((label, "binary", len(b), rate(lambda m=msg: encode(m), args.seconds),
                     rate(lambda d=b: decode(d), args.seconds)))
        rows.append((label, "binary+HMAC", len(signed),
                     rate(lambda m=msg: encode(m, key=b"ward-7-key"), args.seconds),
                     rate(lambda d=signed: decode(d, keys={1: b"ward-7-key"}), args.seconds)))
        rows.append((label, "JSON", len(j), rate(lambda m=msg: encode_json(m), args.seconds),
                     rate(lambda d=j: decode_json(d), args.seconds)))
    frame = encode_alarm_frame(alarm)
    rows.append(("alarm frame", "TCP frame", len(frame),
                 rate(lambda: encode_alarm_frame(alarm), args.seconds),
                 rate(lambda: FrameDecoder().feed(frame), args.seconds)))

    print(f"{'message':24} {'encoding':12} {'bytes':>6} {'encode/s':>12} {'decode/s':>12}")
    for label, enc, size, e, d in rows:
        print(f"{label:24} {enc:12} {size:6d} {e:12,.0f} {d:12,.0f}")
    for label in ("numerics", "ecg chunk (63 samples)"):
        sizes = {enc: size for lab, enc, size, _, _ in rows if lab == label}
        print(f"JSON/binary size ratio, {label}: {sizes['JSON'] / sizes['binary']:.2f}")


if __name__ == "__main__":
    main()
