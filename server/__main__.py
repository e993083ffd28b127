"""``python -m server``: the central station and a ward of simulated bedside monitors.

Prints ``dashboard: http://HOST:PORT/`` once listening; Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import signal
import sys
from pathlib import Path

from vitalsim.devices import WardConfig
from vitalsim.devices.ward import assign_scenarios
from vitalsim.keys import KeyFile, KeyFileError
from vitalsim.scenarios import ScenarioError

from .config import StationConfig, ward_devices
from .hl7_outbound import format_target, parse_target
from .mqtt_bridge import MqttBridge, parse_address
from .mqtt_topics import check_ward
from .sessions import Operator, UserFileError, default_users, load_users
from .system import System, SystemConfig
from .tls import TlsError, self_signed


def port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is outside 0..65535 (0 = any free port)")
    return value


def hl7_target(text: str) -> tuple[str, int]:
    try:
        return parse_target(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    p.add_argument("--beds", type=int, default=8,
                   help="number of simulated beds (default 8; 0: the station alone, for "
                        "devices elsewhere, e.g. python -m vitalsim.devices)")
    p.add_argument("--scenario", default="mix",
                   help="scenario for every bed, a comma list used in turn, or 'mix' (default)")
    p.add_argument("--seed", type=int, default=1, help="seed of the ward's patients")
    p.add_argument("--speed", type=float, default=1.0,
                   help="simulated seconds per real second (default 1)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--http-port", type=port, default=8080)
    p.add_argument("--udp-port", type=port, default=5005)
    p.add_argument("--tcp-port", type=port, default=5006)
    p.add_argument("--journal", default="alarms.sqlite3",
                   help="SQLite alarm journal (default alarms.sqlite3; ':memory:' for none)")
    p.add_argument("--devices", type=int, default=None, metavar="N",
                   help="provision devices 1001..1000+N for beds 1..N (default: --beds); with "
                        "--beds 0 this is how devices elsewhere are let in. Telemetry or alarms "
                        "from any other device are refused as unknown_device")
    p.add_argument("--max-beds", type=int, default=StationConfig.max_beds, metavar="N",
                   help=f"most beds the station serves (default {StationConfig.max_beds}; "
                        "about 200 KiB each once their retention is full)")
    p.add_argument("--udp-receive-buffer", type=int, metavar="BYTES",
                   default=StationConfig.udp_receive_buffer or 0,
                   help="SO_RCVBUF of the telemetry socket (default "
                        f"{StationConfig.udp_receive_buffer or 0}, as the capacity benchmark "
                        "runs; 0: the kernel's default). The kernel caps it at "
                        "net.core.rmem_max")
    p.add_argument("--keys", metavar="FILE", default=None,
                   help="device key file (JSON, docs/PROTOCOL.md 'Device keys'), read by the "
                        "station and its ward; created with a fresh key for every provisioned "
                        "device if it does not exist. Tagged telemetry is verified with each "
                        "device's own key")
    p.add_argument("--require-keys", action="store_true",
                   help="refuse untagged telemetry, and make every alarm connection prove its "
                        "device's key (needs --keys)")
    p.add_argument("--users", metavar="FILE", default=None,
                   help="operators who may log in to the dashboard (JSON: name, role viewer or "
                        "nurse, token; server/sessions.py); default: a nurse and a viewer with "
                        "fresh tokens, printed at start")
    p.add_argument("--no-auth", action="store_true",
                   help="no dashboard sessions: anyone who can reach the HTTP port may read "
                        "every bed and acknowledge alarms (for the early labs only)")
    p.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="another origin (scheme://host:port) whose pages may use the API and "
                        "WebSocket, e.g. a hub's when the dashboard is proxied; repeatable")
    p.add_argument("--tls", metavar="DIR", default=None,
                   help="HTTPS for the dashboard and TLS for the alarm channel, with DIR/cert.pem "
                        "and DIR/key.pem (a self-signed certificate for 127.0.0.1 is made there "
                        "if they do not exist; browsers warn about it). The ward trusts it")
    p.add_argument("--hl7", metavar="HOST:PORT", type=hl7_target, default=None,
                   help="send HL7 v2 over MLLP to the hospital's interface engine at HOST:PORT: "
                        "each bed's vitals (ORU^R01, IHE PCD-01) every --hl7-interval seconds "
                        "and every alarm event (ORU^R40, PCD-04), re-sent until answered AA "
                        "(default: off)")
    p.add_argument("--hl7-interval", type=float, default=None,
                   metavar="SECONDS", help="seconds between one bed's ORU^R01 messages, with "
                   f"--hl7 (default {StationConfig.hl7_interval:g})")
    p.add_argument("--mqtt", metavar="HOST:PORT", default=None,
                   help="publish this ward to an MQTT broker (off by default): vitals QoS 0 "
                        "retained, alarms QoS 1, a Last Will on the station's status "
                        "(docs/HOSPITAL.md)")
    p.add_argument("--mqtt-user", metavar="USER", default=None,
                   help="the station's account at a broker with accounts (station-WARD in the "
                        "course's); its password from the environment, MQTT_PASSWORD")
    p.add_argument("--ward", default=None,
                   help="this station's ward name in MQTT topics, hospital/WARD/... "
                        "(default ward1; needs --mqtt)")
    p.add_argument("--alarm-resound", type=float, default=StationConfig.alarm_resound_after,
                   metavar="SECONDS",
                   help="an acknowledged alarm whose condition is still present sounds again "
                        "after this many seconds (default %(default)s; 0: never)")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    if args.hl7_interval is not None and args.hl7 is None:
        p.error("--hl7-interval is the HL7 interface's: give --hl7 HOST:PORT too (without it "
                "nothing is sent)")
    if args.hl7_interval is None:
        args.hl7_interval = StationConfig.hl7_interval
    if not 0 < args.hl7_interval < math.inf:
        p.error(f"--hl7-interval must be a finite number of seconds more than 0, got "
                f"{args.hl7_interval}")
    if args.beds < 0:
        p.error(f"--beds must be 0 or more, got {args.beds}")
    if args.max_beds < 1:
        p.error(f"--max-beds must be 1 or more, got {args.max_beds}")
    if args.devices is not None and not 0 <= args.devices <= args.max_beds:
        p.error(f"--devices must be 0..{args.max_beds} (--max-beds), got {args.devices}")
    if args.beds > args.max_beds:
        p.error(f"--beds {args.beds} is more than --max-beds {args.max_beds}")
    if args.udp_receive_buffer < 0:
        p.error(f"--udp-receive-buffer must be 0 (the kernel's default) or more bytes, got "
                f"{args.udp_receive_buffer}")
    if args.devices is not None and not 0 <= args.devices <= StationConfig.max_beds:
        p.error(f"--devices must be 0..{StationConfig.max_beds}, got {args.devices}")
    if args.no_auth and args.users is not None:
        p.error("--no-auth and --users contradict each other: sessions are either off or on")
    if args.require_keys and args.keys is None:
        p.error("--require-keys needs --keys FILE (the device key file)")
    if args.ward is not None and args.mqtt is None:
        p.error(f"--ward {args.ward} names this station's ward in MQTT topics, and MQTT is off: "
                "give --mqtt HOST:PORT too (or leave --ward out)")
    args.ward = args.ward or "ward1"
    mqtt_password = os.environ.get("MQTT_PASSWORD")
    if args.mqtt_user is not None and (args.mqtt is None or not mqtt_password):
        p.error(f"--mqtt-user {args.mqtt_user} needs --mqtt HOST:PORT and its password in the "
                "environment variable MQTT_PASSWORD (never on the command line)")
    if args.mqtt is not None:
        try:
            parse_address(args.mqtt)
            check_ward(args.ward)
        except ValueError as exc:
            p.error(str(exc))
    try:
        assign_scenarios(args.scenario, max(args.beds, 1))
    except (ScenarioError, ValueError) as exc:
        p.error(str(exc))
    return args


def device_keys(path: str, devices: int) -> KeyFile:
    """The key file at ``path``; a new one (a key for each of ``devices`` devices) if none."""
    if not Path(path).exists():
        keys = KeyFile.generate(list(ward_devices(devices)))
        keys.save(path)
        print(f"keys: wrote a new key for devices 1001..{1000 + devices} to {path}", flush=True)
        return keys
    try:
        return KeyFile.load(path)
    except KeyFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def operators(args: argparse.Namespace) -> list[Operator] | None:
    """The dashboard's operators: from --users, a fresh nurse and viewer, or None (--no-auth)."""
    if args.no_auth:
        return None
    if args.users is None:
        return default_users()
    try:
        return load_users(args.users)
    except UserFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def station_config(args: argparse.Namespace, *, keys: KeyFile | None = None,
                   cert: Path | None = None, key: Path | None = None) -> StationConfig:
    """The station this command line runs. Every setting not given here is StationConfig's
    default, which is also what the capacity benchmark runs (bench.targets.station_config)."""
    return StationConfig(host=args.host, http_port=args.http_port, udp_port=args.udp_port,
                         tcp_port=args.tcp_port, journal_path=args.journal,
                         devices=ward_devices(args.devices or 0), max_beds=args.max_beds,
                         udp_receive_buffer=args.udp_receive_buffer or None,
                         device_keys=keys, require_auth=args.require_keys,
                         operators=operators(args), allowed_origins=tuple(args.allow_origin),
                         tls_cert=cert, tls_key=key, hl7_target=args.hl7,
                         hl7_interval=args.hl7_interval,
                         alarm_resound_after=args.alarm_resound or None)


async def run(args: argparse.Namespace) -> None:
    provisioned = args.devices if args.devices is not None else args.beds
    keys = None if args.keys is None else device_keys(args.keys, provisioned)
    cert = key = None
    if args.tls is not None:
        try:
            cert, key = self_signed(args.tls)
        except TlsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        print(f"tls: {cert} (self-signed: a browser warns; trust it, or give your own)",
              flush=True)
    config = SystemConfig(
        station_config(args, keys=keys, cert=cert, key=key),
        WardConfig(beds=args.beds, scenario=args.scenario, seed=args.seed, speed=args.speed),
    )
    system = System(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await system.start()
    except OSError as exc:
        print(f"error: cannot listen: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    st = system.station
    print(f"dashboard: {st.login_url()}", flush=True)
    if st.sessions is None:
        print("sessions: OFF (--no-auth): anyone who can reach this port may read and "
              "acknowledge", flush=True)
    else:
        for user in st.sessions.users:
            print(f"login as {user.name} ({user.role}): {st.login_url(user.name)}", flush=True)
    if args.hl7 is not None:
        print(f"hl7: vitals (ORU^R01) every {args.hl7_interval:g} s and alarms (ORU^R40) to "
              f"{format_target(args.hl7)} over MLLP", flush=True)
    bridge = None
    if args.mqtt is not None:
        password = os.environ.get("MQTT_PASSWORD") if args.mqtt_user else None
        bridge = MqttBridge(st, *parse_address(args.mqtt), ward=args.ward,
                            username=args.mqtt_user, password=password).start()
        print(f"mqtt: ward {args.ward} to {args.mqtt} (hospital/{args.ward}/...)", flush=True)
    print(f"telemetry: udp {args.host}:{st.udp_port}  alarms: tcp {args.host}:{st.tcp_port}  "
          f"beds: {args.beds}  (Ctrl-C stops)", flush=True)
    try:
        await stop.wait()
    finally:
        print("stopping…", flush=True)
        if bridge is not None:
            await bridge.stop()
        await system.stop()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
