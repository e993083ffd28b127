"""``python -m bench``: the capacity benchmark; prints a table, writes JSON and a PNG."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .run import (
    HEADER_LINE,
    BenchConfig,
    format_row,
    format_summary,
    py_spy,
    run_benchmark,
    write_outputs,
)


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    p.add_argument("--workloads", help="numerics,full (default both): numerics only at 1 Hz "
                   "per bed (what a latest-value broadcast server is measured with), or "
                   "numerics and every waveform channel")
    p.add_argument("--beds", type=_ints, help="beds to sweep with the full workload, "
                   "e.g. 500,1000,2000,4000")
    p.add_argument("--numerics-beds", type=_ints, help="beds to sweep with the numerics "
                   "workload, e.g. 1000,2000,4000,8000,12000")
    p.add_argument("--clients", type=_ints, help="dashboards to sweep, e.g. 1,10")
    p.add_argument("--designs", help="coalesced,naive (default both)")
    p.add_argument("--seconds", type=float, help="generator run per point (default 10)")
    p.add_argument("--journal", choices=("file", "memory"), help="alarm journal (default file)")
    p.add_argument("--loop", choices=("asyncio", "uvloop"), help="event loop of the targets")
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="record a py-spy profile of the station at each point into DIR")
    p.add_argument("--out", type=Path, default=Path("bench-results"),
                   help="where capacity.json and capacity.png go (default bench-results/)")
    return p.parse_args(argv)


def config_from(args: argparse.Namespace) -> BenchConfig:
    cfg = BenchConfig.smoke() if args.smoke else BenchConfig()
    for name in ("beds", "numerics_beds", "clients", "seconds", "journal", "loop"):
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
    if args.designs:
        cfg.designs = tuple(d.strip() for d in args.designs.split(",") if d.strip())
    if args.workloads:
        cfg.workloads = tuple(w.strip() for w in args.workloads.split(",") if w.strip())
        unknown = set(cfg.workloads) - {"numerics", "full"}
        if unknown:
            raise SystemExit(f"--workloads: unknown {sorted(unknown)}; known: numerics, full")
    cfg.out = args.out
    cfg.profile = args.profile
    if cfg.profile is not None and py_spy() is None:
        raise SystemExit("--profile: py-spy is not installed (it is in the lock: "
                         "make .venv/.installed, or pip install py-spy)")
    return cfg


def main(argv: list[str] | None = None) -> None:
    cfg = config_from(parse_args(argv))
    result = run_benchmark(cfg, log=lambda line: print(line, flush=True))
    paths = write_outputs(result, cfg.out)
    print()
    print(HEADER_LINE)
    for row in result["rows"]:
        print(format_row(row))
    print()
    print(format_summary(result))
    print(f"\nwrote {paths['json']} and {paths['png']}", file=sys.stderr)


if __name__ == "__main__":
    main()
