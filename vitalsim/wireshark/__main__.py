"""``python -m vitalsim.wireshark [--out FILE] [--check]``: write the Wireshark dissector from the
codec's tables, or check that the written one is up to date."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import generate

DEFAULT_OUT = Path("wireshark/vitalsim.lua")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vitalsim.wireshark",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"where the dissector goes (default {DEFAULT_OUT})")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if FILE differs from what would be written")
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else None
        if current != text:
            print(f"{args.out} is out of date: run python -m vitalsim.wireshark", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
