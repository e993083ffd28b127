"""``python -m bench.bench_mqtt``: a hospital of wards through one real broker, until it saturates.

N stations, each with its own simulated ward of B beds, each in its own process, publish through
one Eclipse Mosquitto (course/mqtt_broker.py) to one hospital view (server/hospital.py) in a
process of its own. For each N it prints:

- the broker's CPU, each station's, and the view's (percent of one core, over the window);
- the MQTT messages per second the view took in, against the beds' 1 Hz;
- end to end, device to hospital view: from the numerics' send time (the device's stamp) to the
  view taking the bed's vitals in, p50 / p99 / max;
- alarms lost and duplicated at the view, against every station's own journal (must be 0);
- the load average before and after: the machine is shared, and the figures mean little
  without it.

The stations run the station and its bridge as ``python -m server --mqtt`` does, with the
waveforms off (MQTT carries numerics and alarms, not waves). Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import psutil

from bench.procs import Child
from course.mqtt_broker import Mosquitto
from vitalsim.waiting import wait_until_blocking


def station_main(argv: list[str]) -> None:
    """One ward's station and its bridge (what ``python -m server --mqtt`` runs, waves off)."""
    from server import System
    from server.config import StationConfig
    from server.mqtt_bridge import MqttBridge, parse_address
    from server.system import SystemConfig
    from vitalsim.devices import WardConfig

    ward, beds, broker, journal, seed = argv[0], int(argv[1]), argv[2], argv[3], int(argv[4])
    faulthandler.register(signal.SIGUSR1)  # where a station that does not stop is stuck

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        system = System(SystemConfig(
            StationConfig(http_port=0, udp_port=0, tcp_port=0, journal_path=journal,
                          max_beds=max(beds, 1024)),
            WardConfig(beds=beds, scenario="mix", seed=seed, waves=False)))
        await system.start()
        bridge = MqttBridge(system.station, *parse_address(broker), ward=ward).start()
        print("ready", flush=True)
        await stop.wait()
        # from here on the bridge is given nothing more: the benchmark compares the view with
        # the journal's events up to this row (the station journals them in insertion order)
        system.station.vitals_observers.remove(bridge.bed_changed)
        system.station.alarm_observers.remove(bridge.alarm_stored)
        assert system.station.journal is not None
        cutoff = system.station.journal.db.execute(
            "SELECT coalesce(max(rowid), 0) FROM alarm_events").fetchone()[0]
        Path(journal + ".cutoff").write_text(str(cutoff))
        say(f"{ward}: stopping; waiting for the bridge's outbox")
        await wait_until_alarms_sent(bridge)
        say(f"{ward}: stopping the bridge")
        await bridge.stop()
        say(f"{ward}: stopping the station")
        await system.stop()
        say(f"{ward}: stopped")

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    async def wait_until_alarms_sent(bridge: MqttBridge) -> None:
        from vitalsim.waiting import wait_until
        await wait_until(lambda: not bridge.outbox.pending, timeout=30,
                         what="the bridge's alarm outbox to drain")

    asyncio.run(run())


def view_main(conn: Connection, broker_host: str, broker_port: int) -> None:
    """The hospital view, measuring what it takes in; answers the parent's commands."""
    from server.hospital import HospitalConfig, HospitalView

    async def run() -> None:
        view = await HospitalView(HospitalConfig(broker_host, broker_port,
                                                 client_id="hospital-bench")).start()
        latencies: list[float] = []
        hops: list[float] = []  # from the station's receiving the numerics to the view
        events: Counter[str] = Counter()
        counts = Counter()

        def listener(kind: str, what: object) -> None:
            counts[kind] += 1
            if kind == "vitals":
                bed = view.hospital.beds[what]  # type: ignore[index]
                now, sent, received = time.time(), bed.get("sent_at"), bed.get("received_at")
                if isinstance(sent, float):
                    latencies.append(now - sent)
                if isinstance(received, float):
                    hops.append(now - received)
            elif kind == "alarm":
                events[what["event_id"]] += 1  # type: ignore[index]
        view.listeners.append(listener)
        conn.send({"ready": True})
        loop = asyncio.get_running_loop()
        while True:
            command, _args = await loop.run_in_executor(None, conn.recv)
            if command == "window":
                latencies.clear()
                hops.clear()
                conn.send({"vitals": counts["vitals"], "alarms": counts["alarm"],
                           "at": time.monotonic()})
            elif command == "read":
                lat = np.asarray(latencies) * 1000
                hop = np.asarray(hops) * 1000
                conn.send({"vitals": counts["vitals"], "alarms": counts["alarm"],
                           "at": time.monotonic(), "samples": len(lat),
                           "p50_ms": float(np.percentile(lat, 50)) if len(lat) else None,
                           "p99_ms": float(np.percentile(lat, 99)) if len(lat) else None,
                           "max_ms": float(lat.max()) if len(lat) else None,
                           "hop_p99_ms": float(np.percentile(hop, 99)) if len(hop) else None,
                           "duplicates_dropped": view.hospital.dedup.duplicates,
                           "rejected": sum(view.hospital.rejected.values())})
            elif command == "events":
                conn.send({"events": dict(events)})
            elif command == "stop":
                await view.stop()
                conn.send({"stopped": True})
                return

    asyncio.run(run())


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def one_run(stations: int, beds: int, window: float, warmup: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmp, \
            Mosquitto(directory=Path(tmp) / "broker", persistence=False) as broker:
        load_before = os.getloadavg()[0]
        view = Child("hospital-view", view_main, "127.0.0.1", broker.port)
        procs: list[subprocess.Popen[str]] = []
        try:
            view.wait(30, "the view to start")
            for i in range(stations):
                journal = str(Path(tmp) / f"ward{i + 1}.sqlite3")
                proc = subprocess.Popen([sys.executable, "-m", "bench.bench_mqtt", "--station",
                                         f"w{i + 1}", str(beds), broker.address, journal,
                                         str(i + 1)], stdout=subprocess.PIPE, text=True)
                procs.append(proc)
            for proc in procs:
                line = proc.stdout.readline()  # type: ignore[union-attr]
                if line.strip() != "ready":
                    raise RuntimeError(f"a station did not start: {line!r}")
            time.sleep(warmup)  # the benchmark's warm-up: the wards reach their 1 Hz
            watched = {"broker": psutil.Process(broker.process.pid),  # type: ignore[union-attr]
                       "view": psutil.Process(view.pid),
                       **{f"w{i + 1}": psutil.Process(p.pid) for i, p in enumerate(procs)}}
            cpu0 = {k: cpu_seconds(p) for k, p in watched.items()}
            start = view.ask("window")
            t0 = time.monotonic()
            time.sleep(window)  # the measuring window
            end = view.ask("read")
            elapsed = time.monotonic() - t0
            cpu = {k: 100 * (cpu_seconds(p) - cpu0[k]) / elapsed for k, p in watched.items()}
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            stuck = 0  # stations whose bridge could not hand over its alarms in time
            for proc in procs:
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGUSR1)  # where it was stuck, on its stderr
                    proc.kill()
                    proc.wait()
                if proc.returncode != 0:
                    stuck += 1
            journaled: set[str] = set()
            for i in range(stations):
                path = Path(tmp) / f"ward{i + 1}.sqlite3"
                cutoff = int(Path(str(path) + ".cutoff").read_text())
                with sqlite3.connect(path) as db:
                    journaled |= {f"w{i + 1}/{row[0]}" for row in db.execute(
                        "SELECT alarm_id FROM alarm_events WHERE rowid <= ?", (cutoff,))}
            with contextlib.suppress(TimeoutError):  # what never came is counted as lost
                wait_until_blocking(lambda: set(view.ask("events")["events"]) >= journaled,
                                    timeout=20, interval=0.5,
                                    what="every journaled alarm at the view")
            events = view.ask("events")["events"]
            lost = len(journaled - set(events))
            duplicated = sum(1 for n in events.values() if n > 1)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            try:
                view.ask("stop", 10)
            finally:
                view.kill()
        return {"stations": stations, "beds": beds, "cpu": cpu,
                "msgs_per_s": (end["vitals"] - start["vitals"]) / (end["at"] - start["at"]),
                "p50_ms": end["p50_ms"], "p99_ms": end["p99_ms"], "max_ms": end["max_ms"],
                "hop_p99_ms": end["hop_p99_ms"],
                "alarms": len(journaled), "lost": lost, "duplicated": duplicated, "stuck": stuck,
                "dropped_at_view": end["duplicates_dropped"], "rejected": end["rejected"],
                "load_before": load_before, "load_after": os.getloadavg()[0]}


def fmt(v: float | None, digits: int = 0) -> str:
    return "---" if v is None else f"{v:.{digits}f}"


def print_row(r: dict) -> None:
    stations_cpu = [v for k, v in r["cpu"].items() if k.startswith("w")]
    print(f"| {r['stations']} x {r['beds']} | {r['stations'] * r['beds']} | "
          f"{fmt(r['msgs_per_s'])} | {fmt(r['p50_ms'])} / {fmt(r['p99_ms'])} / "
          f"{fmt(r['max_ms'])} | {fmt(r['hop_p99_ms'])} | {fmt(r['cpu']['broker'])} | "
          f"{fmt(r['cpu']['view'])} | "
          f"{fmt(min(stations_cpu))}-{fmt(max(stations_cpu))} | {r['alarms']} | {r['lost']} | "
          f"{r['duplicated']} | {r['stuck']} | {r['load_before']:.2f} / {r['load_after']:.2f} |",
          flush=True)


def main(argv: list[str] | None = None) -> None:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--station":
        station_main(sys.argv[2:])
        return
    p = argparse.ArgumentParser(prog="python -m bench.bench_mqtt", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--beds", type=int, default=500, help="beds per ward (default 500)")
    p.add_argument("--stations", type=int, nargs="+", default=[4, 6, 8],
                   help="numbers of stations to run, in turn (default 4 6 8)")
    p.add_argument("--window", type=float, default=20.0, help="seconds measured (default 20)")
    p.add_argument("--warmup", type=float, default=8.0, help="seconds before (default 8)")
    args = p.parse_args(argv)
    print("| stations x beds | beds | vitals msgs/s at view | device->view p50 / p99 / max ms "
          "| station->view p99 ms | broker CPU % | view CPU % | each station CPU % | alarms "
          "| lost | duplicated | stations that could not drain "
          "| load avg before / after |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in args.stations:
        print_row(one_run(n, args.beds, args.window, args.warmup))
    print(f"(CPU: percent of one core; {os.cpu_count()} cores, shared)")


if __name__ == "__main__":
    main()
