"""How fast the ward simulates: simulated bed-seconds per CPU-second, numerics plus all three
waveforms, generated the way a bedside device asks for them (numerics each second, each
waveform in quarter-second chunks).

    .venv/bin/python bench/bench_physiology.py [--beds 100] [--minutes 10]

Bulk generation (a lab simulating an hour at once) asks for long chunks; a live device asks for a
quarter of a second at a time, where numpy's per-call overhead dominates. Both are reported.
"""

from __future__ import annotations

import argparse
import time

from vitalsim.devices.ward import assign_scenarios
from vitalsim.physiology import WAVE_RATES, PatientModel


def run(beds: int, seconds: int, chunk: float) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, samples) to simulate ``beds`` beds for ``seconds``."""
    models = [PatientModel(name, seed=i) for i, name in enumerate(assign_scenarios("mix", beds))]
    samples = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for model in models:
        index = dict.fromkeys(WAVE_RATES, 0)
        next_second = 0
        t = 0.0
        while t < seconds:
            t = min(t + chunk, seconds)
            while next_second < t:
                model.numerics(float(next_second))
                next_second += 1
            for channel, rate in WAVE_RATES.items():
                end = int(t * rate)
                samples += len(model.waveform(channel, index[channel], end - index[channel]))
                index[channel] = end
    return time.process_time() - cpu0, time.perf_counter() - wall0, samples


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--beds", type=int, default=100)
    p.add_argument("--minutes", type=float, default=10.0)
    args = p.parse_args()
    seconds = int(args.minutes * 60)
    print(f"{args.beds} beds x {args.minutes:g} simulated minutes, numerics + ecg/pleth/resp")
    print(f"{'waveform chunk':>16} {'CPU s':>8} {'samples':>11} {'bed-s per CPU-s':>16} "
          f"{'1 h x 100 beds':>15}")
    for chunk, label in ((60.0, "60 s (labs)"), (0.25, "0.25 s (device)")):
        cpu, _wall, samples = run(args.beds, seconds, chunk)
        rate = args.beds * seconds / cpu
        print(f"{label:>16} {cpu:8.2f} {samples:11,d} {rate:16,.0f} {100 * 3600 / rate:13.1f} s")


if __name__ == "__main__":
    main()
