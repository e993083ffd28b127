"""``python -m vitalsim.devices``: a ward of bedside monitors sending to a station elsewhere.

    python -m vitalsim.devices --host 10.213.0.2 --udp-port 5005 --tcp-port 5006 --beds 4 \\
        --seconds 20

Runs for ``--seconds``, then stops sampling and waits (up to ``--drain`` seconds) until every
alarm has been acknowledged, and prints one JSON line of what it did: alarms raised and still
unacknowledged, re-sends, connections and datagrams.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys

from ..alarms import FLAPPING_HR
from ..keys import KeyFile, KeyFileError
from ..scenarios import ScenarioError
from ..waiting import wait_until
from .ward import Ward, WardConfig, assign_scenarios


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m vitalsim.devices", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="the station's address")
    p.add_argument("--udp-port", type=int, default=5005)
    p.add_argument("--tcp-port", type=int, default=5006)
    p.add_argument("--beds", type=int, default=4)
    p.add_argument("--scenario", default="mix")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--seconds", type=float, default=30.0, help="how long to run")
    p.add_argument("--drain", type=float, default=60.0,
                   help="how long to wait for the last ACKs afterwards")
    p.add_argument("--no-waves", action="store_true", help="numerics only")
    p.add_argument("--keys", metavar="FILE", default=None,
                   help="device key file (vitalsim.keys; the station's --keys): sign telemetry "
                        "and authenticate the alarm channel with each device's key (the "
                        "station must run with --require-keys, or the alarms wait)")
    p.add_argument("--alarm-storm", action="store_true",
                   help="an HR limit at the patient's own rate: alarms every few seconds")
    args = p.parse_args(argv)
    if args.keys is not None:
        try:
            args.keys = KeyFile.load(args.keys)
        except KeyFileError as exc:
            p.error(str(exc))
    try:
        assign_scenarios(args.scenario, args.beds)
    except (ScenarioError, ValueError) as exc:
        p.error(str(exc))
    return args


async def run(args: argparse.Namespace) -> dict:
    ward = Ward(WardConfig(beds=args.beds, scenario=args.scenario, seed=args.seed,
                           speed=args.speed, waves=not args.no_waves,
                           limits=FLAPPING_HR if args.alarm_storm else None,
                           keys=args.keys, alarm_auth=args.keys is not None),
                args.host, args.udp_port, args.tcp_port)
    await ward.start()
    try:
        await asyncio.sleep(args.seconds)  # the ward's running time, not a wait for a result
        for link in ward.links:
            await link.stop_telemetry()
        with contextlib.suppress(TimeoutError):  # what is left unacknowledged is reported
            await wait_until(lambda: not any(link.sender.outbox for link in ward.links),
                             timeout=args.drain, interval=0.1, what="every outbox to drain")
    finally:
        await ward.stop()
    return {
        "alarms_raised": sum(link.alarms_raised for link in ward.links),
        "unacknowledged": sum(len(link.sender.outbox) for link in ward.links),
        "resent": sum(link.sender.resent for link in ward.links),
        "connections": sum(link.connections for link in ward.links),
        "datagrams_sent": sum(link.datagrams_sent for link in ward.links),
    }


def main(argv: list[str] | None = None) -> None:
    summary = asyncio.run(run(parse(argv)))
    print(json.dumps(summary), flush=True)
    sys.exit(1 if summary["unacknowledged"] else 0)


if __name__ == "__main__":
    main()
