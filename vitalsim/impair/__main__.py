"""``python -m vitalsim.impair udp|tcp``: an impairment proxy from the command line.

    python -m vitalsim.impair udp --target 127.0.0.1:5005 --loss 0.1 --burst 3 --jitter 0.02
    python -m vitalsim.impair tcp --target 127.0.0.1:5006 --latency 0.2

Point the devices at the printed port instead of the station's. Ctrl-C stops it and prints
what it did.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from .model import TcpSettings, UdpSettings
from .proxy import TcpImpairmentProxy, UdpImpairmentProxy


def address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (port 0..65535)")
    return host or "127.0.0.1", int(port)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m vitalsim.impair", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="kind", required=True)
    udp = sub.add_parser("udp", help="impair datagrams (telemetry)")
    tcp = sub.add_parser("tcp", help="impair a TCP service (the alarm channel)")
    for q in (udp, tcp):
        q.add_argument("--target", type=address, required=True, help="where to forward")
        q.add_argument("--listen", type=address, default=("127.0.0.1", 0),
                       help="where to listen (default 127.0.0.1:0, any free port)")
    udp.add_argument("--loss", type=float, default=0.0)
    udp.add_argument("--burst", type=float, default=0.0)
    udp.add_argument("--delay", type=float, default=0.0)
    udp.add_argument("--jitter", type=float, default=0.0)
    udp.add_argument("--duplicate", type=float, default=0.0)
    udp.add_argument("--reorder", type=float, default=0.0)
    udp.add_argument("--seed", type=int, default=0)
    tcp.add_argument("--latency", type=float, default=0.0)
    tcp.add_argument("--bandwidth", type=float, default=0.0)
    args = p.parse_args(argv)
    try:
        if args.kind == "udp":
            args.settings = UdpSettings(args.loss, args.burst, args.delay, args.jitter,
                                        args.duplicate, args.reorder)
        else:
            args.settings = TcpSettings(args.latency, args.bandwidth)
        args.settings.check()
    except ValueError as exc:
        p.error(str(exc))
    return args


async def run(args: argparse.Namespace) -> None:
    if args.kind == "udp":
        proxy: UdpImpairmentProxy | TcpImpairmentProxy = UdpImpairmentProxy(
            args.target, args.settings, seed=args.seed, listen=args.listen)
    else:
        proxy = TcpImpairmentProxy(args.target, args.settings, listen=args.listen)
    await proxy.start()
    print(f"{args.kind} impairment: {args.listen[0]}:{proxy.port} -> "
          f"{args.target[0]}:{args.target[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await proxy.stop()
        print("did:", ", ".join(f"{k} {v}" for k, v in proxy.counters.items()), flush=True)


def main(argv: list[str] | None = None) -> None:
    asyncio.run(run(parse(argv)))


if __name__ == "__main__":
    main()
