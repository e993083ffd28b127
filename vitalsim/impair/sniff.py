"""``python -m vitalsim.impair.sniff --iface IF --out F.pcap --seconds N``: capture with scapy.

Runs inside a namespace (``Namespaces.run("station", ...)``) to record what crossed the veth.
Needs root. Stops after ``--seconds`` or ``--count`` packets, or on SIGTERM, and writes what it
caught.
"""

from __future__ import annotations

import argparse
import signal
import sys

from scapy.all import AsyncSniffer, wrpcap


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m vitalsim.impair.sniff", description=__doc__)
    p.add_argument("--iface", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--count", type=int, default=0, help="stop after this many (0: no limit)")
    p.add_argument("--filter", default="tcp or udp", help="BPF filter (default: tcp or udp)")
    args = p.parse_args(argv)
    sniffer = AsyncSniffer(iface=args.iface, filter=args.filter, count=args.count,
                           store=True)
    sniffer.start()
    signal.signal(signal.SIGTERM, lambda *_: sniffer.stop())
    print("sniffing", flush=True)
    sniffer.join(timeout=args.seconds)
    if sniffer.running:
        sniffer.stop()
    packets = sniffer.results or []
    wrpcap(args.out, packets)
    print(f"wrote {len(packets)} packets to {args.out}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
