"""The capacity benchmark's runs, table, JSON and plot.

One *point* is one run of fresh processes: a target (the station, or the bare receiver), the
load generator, and (unless there are none) the dashboards. The parent marks the target, lets
the generator send for a fixed time (paced like real beds, or flat out for a *flood*), lets the
alarm outboxes drain, then asks each part for its counts. Children are killed in ``finally``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from server.__main__ import parse_args as cli_args
from server.__main__ import station_config as cli_station_config

from .dashboards import dashboards_main, merge
from .loadgen import generator_main
from .memory import memory_main
from .procs import Child
from .profile_summary import where_the_time_went
from .targets import bare_main, station_config, station_main

# what "holds" means at one point: every reading delivered to every dashboard (99.9 %), no
# alarm lost, and the end-to-end p99 under 250 ms
MIN_DELIVERED_PERCENT = 99.9
MAX_LOSS_PERCENT = 0.1  # without dashboards, of the datagrams the station took in
MAX_P99_MS = 250.0

# the targets on this machine (see README, Capacity)
TARGET_NUMERICS_1_DASHBOARD = 8000
TARGET_NUMERICS_10_DASHBOARDS = 4000
TARGET_NUMERICS_P50_MS = 10.0
TARGET_FULL_BEDS_10_DASHBOARDS = 2000
TARGET_INGEST_SHARE = 0.60
TARGET_STALL_BEDS, TARGET_STALL_MS = 4000, 20.0  # no stall over 20 ms on the loop at 4,000 beds


@dataclass
class BenchConfig:
    """Sizes and durations of one benchmark; the defaults are the full sweep (about 8 min on
    two cores). Each series (workload, dashboards, design) goes up in beds until its first
    point that does not hold, and stops there: the sweep goes past where each design fails."""

    workloads: tuple[str, ...] = ("numerics", "full")
    beds: tuple[int, ...] = (500, 1000, 2000, 4000)  # the full workload's sweep
    numerics_beds: tuple[int, ...] = (1000, 2000, 4000, 8000, 12000)
    clients: tuple[int, ...] = (1, 10)
    designs: tuple[str, ...] = ("coalesced", "naive")
    seconds: float = 10.0  # generator run per point
    warmup: float = 1.0  # latencies of the first second of each point are not counted
    flood_seconds: float = 4.0
    flood_beds: int = 1000
    flood_clients: int = 0  # the ceiling has none either: both measure taking datagrams in
    waves_per_client: int = 4
    alarms_per_bed_hour: float = 12.0  # a raise or a clear per bed every five minutes
    min_alarm_rate: float = 2.0  # alarms per second, whatever the number of beds
    journal: str = "file"  # "file" (SQLite on disk, fsync per alarm) or "memory"
    loop: str = "asyncio"  # or "uvloop", when it is installed
    memory_beds: int = 50
    max_beds: int = 8000  # the run at 80 % of the station's maximum never has more beds
    seed: int = 1
    # processes the dashboards are spread over (at most one per dashboard)
    dashboard_processes: int = field(default_factory=lambda: os.cpu_count() or 1)
    at80: bool = True  # the run at 80 % of the station's maximum (the smoke test skips it)
    profile: Path | None = None  # a py-spy profile of the station at each point goes here
    out: Path = field(default_factory=lambda: Path("bench-results"))

    @classmethod
    def smoke(cls, **changes: object) -> BenchConfig:
        """Every part of the benchmark at tiny sizes, in seconds: what ``make test`` runs."""
        sizes: dict = {"beds": (20,), "numerics_beds": (20,), "clients": (2,), "seconds": 1.5,
                       "warmup": 0.5, "flood_seconds": 1.0, "flood_beds": 20,
                       "flood_clients": 2, "memory_beds": 4, "max_beds": 40, "at80": False}
        return cls(**{**sizes, **changes})

    def alarm_rate(self, beds: int) -> float:
        return max(beds * self.alarms_per_bed_hour / 3600, self.min_alarm_rate)

    def station_beds(self) -> int:
        """The devices every station of the run provisions: room for its largest ward."""
        return max(8192, self.max_beds, self.flood_beds, *self.beds, *self.numerics_beds)

    def options(self, design: str) -> dict:
        """What a target process is given: the station's settings are python -m server's
        defaults except bench.targets.BENCH_OVERRIDES and, for the naive design, coalesce."""
        return {"station": {"coalesce": False} if design == "naive" else {},
                "journal": self.journal, "loop": self.loop, "max_beds": self.station_beds()}


def _shown(name: str, value: object) -> str:
    """A setting as the benchmark prints it: a count for the ward's devices, and never an
    operator's token (sessions are shown as on, with how many operators, or off)."""
    if name == "devices":
        return f"{len(value or {})} devices"
    if name == "operators":
        return "sessions off" if value is None else f"sessions on, {len(value)} operators"
    return str(value)


def config_differences(cfg: BenchConfig) -> dict[str, tuple[str, str]]:
    """Each station setting of the benchmark that differs from ``python -m server``'s defaults:
    name -> (the benchmark's, the command line's). Printed beside the results."""
    ours = station_config(cfg.options("coalesced"), "<tmp>/alarms.sqlite3"
                          if cfg.journal == "file" else ":memory:")
    theirs = cli_station_config(cli_args([]))
    out: dict[str, tuple[str, str]] = {}
    for f in fields(ours):
        a, b = getattr(ours, f.name), getattr(theirs, f.name)
        if a != b:
            out[f.name] = (_shown(f.name, a), _shown(f.name, b))
    return out


def format_differences(cfg: BenchConfig) -> str:
    diffs = config_differences(cfg)
    parts = [f"{name}={ours} (python -m server: {theirs})"
             for name, (ours, theirs) in diffs.items()]
    return ("station settings that differ from python -m server's defaults: "
            + ("; ".join(parts) or "none")
            + ".\nthe naive rows also set coalesce=False; the benchmark's dashboards subscribe "
              "to no bed's statistics (\"stats\": [], totals only); the numerics workload is "
              "telemetry only (no alarm links, no alarms)")


def run_point(cfg: BenchConfig, *, design: str, beds: int, clients: int,
              flood: bool = False, seconds: float | None = None,
              workload: str = "full", sweep: bool = True) -> dict:
    """One run; ``design`` is "coalesced", "naive" or "bare" (the ceiling). ``sweep``: a
    point of a saturation sweep (False for the ceiling, the maxima and the 80 % point)."""
    seconds = seconds if seconds is not None else (cfg.flood_seconds if flood else cfg.seconds)
    options = cfg.options(design)
    children: list[Child] = []
    try:
        target = Child(design, bare_main if design == "bare" else station_main, options)
        children.append(target)
        generator = Child("generator", generator_main)
        children.append(generator)
        # the K dashboards over as many processes as there are cores (at most K): in one
        # process, parsing 10 dashboards' messages took a whole core before the station did
        shares = _split(clients, cfg.dashboard_processes) if design != "bare" else []
        dashboards = [Child(f"dashboards {i + 1}", dashboards_main) for i in range(len(shares))]
        children.extend(dashboards)
        ports = target.wait(60, "start")
        # the numerics workload is telemetry only, as a latest-value broadcast server is
        # measured: no alarm links (the full workload has one per bed, and alarms)
        links = workload == "full"
        gen = generator.ask("init", timeout=180, host="127.0.0.1", udp_port=ports["udp_port"],
                            tcp_port=ports["tcp_port"] if links else 0, beds=beds,
                            seed=cfg.seed, workload=workload)
        first = 0
        for child, share in zip(dashboards, shares, strict=True):
            child.ask("init", timeout=60, url=f"ws://127.0.0.1:{ports['http_port']}/ws",
                      clients=share, first=first, beds=beds,
                      waves_per_client=0 if workload == "numerics" else cfg.waves_per_client)
            first += share
        target.ask("mark")
        profile = _profile_path(cfg, design, beds, clients, flood, workload)
        profiler = _profile(target, profile, seconds)
        alarm_rate = cfg.alarm_rate(beds) if design != "bare" and links else 0.0
        started = time.time()
        generator.conn.send(("run", {"seconds": seconds, "flood": flood,
                                     "alarm_rate": alarm_rate}))
        # the loop's lag and the collector's pauses count from the end of the warm-up, as the
        # latencies do: a ward's first second makes every bed's state (bench.run prints both)
        time.sleep(min(cfg.warmup, seconds))
        target.ask("steady")
        sent = generator.wait(seconds + 60, "run")
        ended = time.time()
        if profiler is not None:
            profiler.wait(30)
        alarms = generator.ask("drain", timeout=30, timeout_s=5.0)
        received = target.ask("report", timeout=30)
        window = {"since": started + cfg.warmup, "until": ended}
        for child in dashboards:  # all report at once: each waits for its in-flight updates
            child.conn.send(("report", window))
        latency = merge([child.wait(30, "report") for child in dashboards]) \
            if dashboards else {}
        owed = generator.ask("numerics", timeout=30, **window)["numerics_sent"]
        for child in reversed(children):
            child.ask("stop", timeout=10)
    finally:
        for child in children:
            child.kill()
    offered, got = sent["sent"], received["received"]
    lag = received.get("loop_lag", {})
    delivered = 100 * latency["vitals_updates"] / (owed * clients) \
        if latency and owed else None
    row = {
        "workload": workload, "design": design, "beds": beds, "sweep": sweep and not flood,
        "clients": clients if design != "bare" else 0,
        "flood": flood, "seconds": sent["seconds"],
        "offered_per_s": offered / sent["seconds"], "received_per_s": got / sent["seconds"],
        "offered": offered, "received": got,
        "loss_percent": 100 * max(offered - got, 0) / offered if offered else 0.0,
        "delivered_percent": delivered, "readings_owed": owed * clients,
        "alarm_rate": alarm_rate, "alarms_sent": alarms["alarms_sent"],
        "alarms_acked": alarms["alarms_acked"],
        "alarms_lost": alarms["alarms_sent"] - alarms["alarms_acked"],
        "p50_ms": latency.get("p50_ms"), "p99_ms": latency.get("p99_ms"),
        "lag_max_ms": lag.get("lag_max_ms"), "lag_p99_ms": lag.get("lag_p99_ms"),
        # the garbage collector's longest pause in steady state, any generation
        "gc_max_ms": max(lag["gc"]["max_pause_ms"]) if "gc" in lag else None,
        "cpu_percent": received["cpu_percent"], "peak_rss": received["peak_rss"],
        "rcvbuf": ports["rcvbuf"], "loop": ports["loop"],
        "generator": {k: v for k, v in {**gen, **sent}.items()},
        "dashboards": latency, "target": received,
        "profile": str(profile) if profiler is not None else None,
    }
    return row


def py_spy() -> str | None:
    """py-spy's executable: beside this Python's, or on the PATH."""
    beside = Path(sys.executable).parent / "py-spy"  # installed in the same venv
    return str(beside) if beside.exists() else shutil.which("py-spy")


def _profile_path(cfg: BenchConfig, design: str, beds: int, clients: int, flood: bool,
                  workload: str) -> Path | None:
    """Where this point's profile goes, if the run records profiles and py-spy is here."""
    if cfg.profile is None or py_spy() is None:
        return None
    name = f"{workload}-{design}-{beds}beds-{clients}dash{'-max' if flood else ''}.txt"
    return cfg.profile / name


def _profile(target: Child, path: Path | None, seconds: float) -> subprocess.Popen | None:
    """py-spy, sampling the target for the run, as collapsed stacks (py-spy's "raw")."""
    spy = py_spy()
    if path is None or spy is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [spy, "record", "--pid", str(target.pid), "--duration", str(max(1, int(seconds))),
         "--rate", "200", "--nonblocking", "--format", "raw", "--output", str(path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def holds(row: dict) -> bool:
    """Did this point hold: every reading delivered to every dashboard (99.9 %; without
    dashboards, the station took in 99.9 % of the datagrams), no alarm lost, p99 under 250 ms?"""
    if row["alarms_lost"] != 0:
        return False
    if not row["clients"]:
        return row["loss_percent"] < MAX_LOSS_PERCENT
    return (row["delivered_percent"] is not None
            and row["delivered_percent"] >= MIN_DELIVERED_PERCENT
            and row["p99_ms"] is not None and row["p99_ms"] < MAX_P99_MS)


def saturation(rows: list[dict], design: str, clients: int, workload: str = "full") -> dict:
    """The most beds this design held with this many dashboards, before the first miss."""
    held, missed = 0, None
    for row in sorted((r for r in rows if r["design"] == design and r["clients"] == clients
                       and r.get("sweep", not r["flood"])
                       and r.get("workload", "full") == workload),
                      key=lambda r: r["beds"]):
        if not holds(row):
            missed = row["beds"]
            break
        held = row["beds"]
    return {"held": held, "first_missed": missed}


def measure_memory(beds: int) -> dict:
    child = Child("memory", memory_main, beds)
    try:
        return child.wait(120, "the memory measurement")
    finally:
        child.kill()


def run_benchmark(cfg: BenchConfig, log: Callable[[str], None] = print) -> dict:
    """The whole benchmark: memory, ceiling, station maximum and 80 %, then the sweep of each
    workload; then :func:`summarize` reads the figures and the targets off the rows."""
    started = time.monotonic()
    result: dict = {"config": {k: str(v) if isinstance(v, Path) else v
                               for k, v in asdict(cfg).items()},
                    "differences": config_differences(cfg),
                    "machine": {"python": platform.python_version(), "cpus": _cpus(),
                                "load_before": _loadavg()},
                    "rows": []}
    rows = result["rows"]

    def point(**kw: object) -> dict:
        row = run_point(cfg, **kw)  # type: ignore[arg-type]
        rows.append(row)
        log(format_row(row))
        return row

    log(format_differences(cfg))
    log(f"memory: {cfg.memory_beds} beds with full retention ...")
    result["memory"] = measure_memory(cfg.memory_beds)
    log(f"memory: {result['memory']['bytes_per_bed'] / 1024:.0f} KiB per bed")
    log(HEADER_LINE)
    flood = {"beds": cfg.flood_beds, "flood": True}
    ceiling = point(design="bare", clients=0, **flood)
    ours = point(design="coalesced", clients=cfg.flood_clients, **flood)
    naive = point(design="naive", clients=cfg.flood_clients, **flood) \
        if "naive" in cfg.designs else None
    per_bed = ours["generator"]["per_bed_second"]
    beds80 = min(cfg.max_beds, max(1, round(0.8 * ours["received_per_s"] / per_bed)))
    at80 = point(design="coalesced", beds=beds80, clients=cfg.flood_clients, sweep=False) \
        if cfg.at80 else None
    for workload in cfg.workloads:
        sweep = cfg.numerics_beds if workload == "numerics" else cfg.beds
        for clients in cfg.clients:
            for design in cfg.designs:
                for beds in sorted(sweep):
                    # past the first point a design does not hold, it holds no more
                    if not holds(point(design=design, beds=beds, clients=clients,
                                       workload=workload)):
                        break
    result["summary"] = summarize(cfg, rows, ceiling=ceiling, ours=ours, naive=naive,
                                  at80=at80, bytes_per_bed=result["memory"]["bytes_per_bed"])
    result["machine"]["load_after"] = _loadavg()
    result["seconds"] = time.monotonic() - started
    return result


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def summarize(cfg: BenchConfig, rows: list[dict], *, ceiling: dict, ours: dict,
              naive: dict | None, at80: dict | None, bytes_per_bed: float) -> dict:
    """The headline figures from the measured rows: the ceiling, the station's maximum and its
    share of the ceiling, the 80 % point, each design's saturation per workload, and the
    issue's targets, each met or missed."""
    summary: dict = {
        "ceiling_per_s": ceiling["received_per_s"],
        "ceiling_offered_per_s": ceiling["offered_per_s"],
        "ceiling_generator_bound": ceiling["loss_percent"] < 1.0,
        "station_max_per_s": ours["received_per_s"],
        "station_to_ceiling": _ratio(ours["received_per_s"], ceiling["received_per_s"]),
        "bytes_per_bed": bytes_per_bed,
        # what one bed sends, per workload: the wire cost of the channels it carries
        "wire_per_bed_second": {
            r["workload"]: {"datagrams": r["generator"]["per_bed_second"],
                            "bytes": r["generator"].get("bytes_per_bed_second")}
            for r in rows if r.get("sweep")},
    }
    if at80 is not None:
        summary["at_80_percent"] = {
            "beds": at80["beds"], "offered_per_s": at80["offered_per_s"],
            "fraction_of_max": _ratio(at80["offered_per_s"], ours["received_per_s"]),
            "loss_percent": at80["loss_percent"], "p99_ms": at80["p99_ms"]}
    if naive is not None:
        summary["naive_max_per_s"] = naive["received_per_s"]
    for workload in cfg.workloads:
        for clients in cfg.clients:
            summary[f"saturation_{workload}_{clients}_clients"] = saturation_entry(
                cfg, rows, clients, workload)
    summary["targets"] = targets(cfg, rows, summary)
    return summary


def saturation_entry(cfg: BenchConfig, rows: list[dict], clients: int,
                     workload: str = "full") -> dict:
    """Where each design saturates with ``clients`` dashboards, the coalesced-to-naive ratio, and
    below saturation the station CPU each design spends on the same load."""
    sat = {d: saturation(rows, d, clients, workload) for d in cfg.designs}
    entry: dict = {**sat}
    if "naive" in sat and "coalesced" in sat and sat["naive"]["held"]:
        entry["ratio"] = sat["coalesced"]["held"] / sat["naive"]["held"]
        entry["ratio_is_lower_bound"] = sat["coalesced"]["first_missed"] is None
        sweep = cfg.numerics_beds if workload == "numerics" else cfg.beds
        both = [b for b in sweep
                if all(sat[d]["held"] >= b for d in ("coalesced", "naive"))]
        if both:
            cpu = {d: next(r["cpu_percent"] for r in rows if r["design"] == d
                           and r["beds"] == both[-1] and r["clients"] == clients
                           and r.get("sweep") and r.get("workload", "full") == workload)
                   for d in ("coalesced", "naive")}
            entry["cpu_at_beds"] = {"beds": both[-1], **cpu}
    return entry


def targets(cfg: BenchConfig, rows: list[dict], summary: dict) -> list[dict]:
    """The issue's six targets, each with what was measured, met or not (None: this run did
    not measure it), and by how much it was missed."""
    out: list[dict] = []

    def line(target: str, measured: str, met: bool | None, short_by: str | None = None,
             row: dict | None = None) -> None:
        """``row``: the point that decided it (its profile, if recorded, says what is left)."""
        out.append({"target": target, "measured": measured, "met": met,
                    "short_by": None if met else short_by,
                    "point": None if row is None else _point(row),
                    "profile": None if row is None else row.get("profile")})

    def series(workload: str, clients: int, beds: int) -> dict | None:
        return next((r for r in rows if r.get("workload") == workload and r.get("sweep")
                     and r["design"] == "coalesced" and r["clients"] == clients
                     and r["beds"] == beds), None)

    for clients, goal in ((1, TARGET_NUMERICS_1_DASHBOARD), (10, TARGET_NUMERICS_10_DASHBOARDS)):
        name = f"numerics, {clients} dashboard{'s' * (clients > 1)}: >= {goal:,} beds held"
        s = summary.get(f"saturation_numerics_{clients}_clients", {}).get("coalesced")
        if s is None:
            line(name, "not in this run's sweep", None)
            continue
        line(name, f"held {s['held']:,} beds" + (f", missed at {s['first_missed']:,}"
                                                 if s["first_missed"] else ", no miss"),
             s["held"] >= goal, f"{goal - s['held']:,} beds",
             series("numerics", clients, s["first_missed"]) if s["first_missed"] else None)
    name = f"numerics: p50 < {TARGET_NUMERICS_P50_MS:g} ms below saturation"
    below = [r for r in rows if r.get("workload") == "numerics" and r["design"] == "coalesced"
             and r.get("sweep") and r["clients"] and holds(r)]
    if below:
        worst = max(below, key=lambda r: r["p50_ms"] or 0.0)
        p50 = worst["p50_ms"] or 0.0
        line(name, f"worst p50 {_ms(p50)} ms ({worst['beds']:,} beds, {worst['clients']} "
                   "dashboards)", p50 < TARGET_NUMERICS_P50_MS,
             f"{p50 - TARGET_NUMERICS_P50_MS:.1f} ms", worst)
    else:
        line(name, "no numerics point held", None)
    name = (f"full workload, {TARGET_FULL_BEDS_10_DASHBOARDS:,} beds, 10 dashboards: "
            f"p99 < {MAX_P99_MS:g} ms, >= {MIN_DELIVERED_PERCENT}% delivered")
    full = [r for r in rows if r.get("workload") == "full" and r["design"] == "coalesced"
            and r["clients"] == 10 and r["beds"] == TARGET_FULL_BEDS_10_DASHBOARDS
            and r.get("sweep")]
    if full:
        r = full[0]
        misses = []
        if (r["p99_ms"] or 0.0) >= MAX_P99_MS:
            misses.append(f"{r['p99_ms'] - MAX_P99_MS:.0f} ms of p99")
        if (r["delivered_percent"] or 0.0) < MIN_DELIVERED_PERCENT:
            misses.append(f"{MIN_DELIVERED_PERCENT - (r['delivered_percent'] or 0.0):.2f} "
                          "points delivered")
        if r["alarms_lost"]:
            misses.append(f"{r['alarms_lost']} alarms lost")
        line(name, f"p99 {_ms(r['p99_ms'])} ms, delivered {_pct(r['delivered_percent'])}, "
                   f"{r['alarms_lost']} alarms lost", holds(r),
             ", ".join(misses) or "loss at the station (see its row)", r)
    else:
        line(name, "not in this run's sweep (or an earlier point already missed)", None)
    name = (f"no stall over {TARGET_STALL_MS:g} ms on the station's loop at "
            f"{TARGET_STALL_BEDS:,} beds (numerics, steady state)")
    at = [r for r in rows if r.get("workload") == "numerics" and r["design"] == "coalesced"
          and r["beds"] == TARGET_STALL_BEDS and r.get("sweep") and r.get("lag_max_ms") is not None]
    if at:
        worst = max(at, key=lambda r: r["lag_max_ms"])
        line(name, f"loop lag max {_ms(worst['lag_max_ms'])} ms, garbage collector "
                   f"{_ms(worst.get('gc_max_ms'))} ms ({worst['clients']} dashboards)",
             worst["lag_max_ms"] <= TARGET_STALL_MS,
             f"{worst['lag_max_ms'] - TARGET_STALL_MS:.0f} ms", worst)
    else:
        line(name, "not in this run's sweep", None)
    share = summary["station_to_ceiling"] or 0.0
    flat_out = next((r for r in rows if r["flood"] and r["design"] == "coalesced"), None)
    line(f"ingest >= {100 * TARGET_INGEST_SHARE:.0f}% of the bare receiver",
         f"{100 * share:.0f}%", share >= TARGET_INGEST_SHARE,
         f"{100 * (TARGET_INGEST_SHARE - share):.0f} points", flat_out)
    return out


HEADER_LINE = (f"{'workload':8} {'design':10} {'beds':>5} {'dash':>4} {'offered/s':>9} "
               f"{'loss %':>6} {'deliv %':>7} {'alarms s/a/l':>12} {'p50 ms':>6} "
               f"{'p99 ms':>6} {'lag max':>7} {'lag p99':>7} {'gc max':>6} {'cpu %':>5} "
               f"{'rss MB':>6} {'dash cpu':>8}")


def _point(row: dict) -> str:
    return (f"{row.get('workload', 'full')} {row['design']}{' max' if row['flood'] else ''}, "
            f"{row['beds']:,} beds, {row['clients']} dashboards")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}%" if value < 100 else "100%"


def format_row(row: dict) -> str:
    design = row["design"] + (" max" if row["flood"] else "")
    alarms = f"{row['alarms_sent']}/{row['alarms_acked']}/{row['alarms_lost']}"
    delivered = "-" if row.get("delivered_percent") is None else \
        f"{row['delivered_percent']:.2f}"
    return (f"{row.get('workload', 'full'):8} {design:10} {row['beds']:5d} {row['clients']:4d} "
            f"{row['offered_per_s']:9,.0f} {row['loss_percent']:6.2f} {delivered:>7} "
            f"{alarms:>12} {_ms(row['p50_ms']):>6} {_ms(row['p99_ms']):>6} "
            f"{_ms(row.get('lag_max_ms')):>7} {_ms(row.get('lag_p99_ms')):>7} "
            f"{_ms(row.get('gc_max_ms')):>6} {row['cpu_percent']:5.0f} "
            f"{row['peak_rss'] / 1e6:6.0f} {_ms(row['dashboards'].get('cpu_percent')):>8}")


def format_summary(result: dict) -> str:
    s = result["summary"]
    lines = [
        f"ceiling (bare asyncio receiver): {s['ceiling_per_s']:,.0f} datagrams/s"
        + (" (generator-bound: it took all that was offered)"
           if s["ceiling_generator_bound"] else ""),
        f"station maximum: {s['station_max_per_s']:,.0f} datagrams/s = "
        f"{100 * (s['station_to_ceiling'] or 0):.0f}% of the ceiling",
    ]
    if "naive_max_per_s" in s:
        lines.append(f"naive design maximum: {s['naive_max_per_s']:,.0f} datagrams/s")
    a = s.get("at_80_percent")
    if a is not None:
        lines.append(f"at {100 * (a['fraction_of_max'] or 0):.0f}% of the station's maximum "
                     f"({a['beds']} beds, "
                     f"{a['offered_per_s']:,.0f}/s): loss {a['loss_percent']:.3f}%, "
                     f"p99 {_ms(a['p99_ms'])} ms")
    for key, entry in s.items():
        if key.startswith("saturation_"):
            parts = [f"{d} held {v['held']} beds" for d, v in entry.items()
                     if isinstance(v, dict) and "held" in v]
            ratio = entry.get("ratio")
            if ratio is not None:
                parts.append(f"ratio {'>= ' if entry['ratio_is_lower_bound'] else ''}"
                             f"{ratio:.1f}")
            if "cpu_at_beds" in entry:
                c = entry["cpu_at_beds"]
                parts.append(f"station CPU at {c['beds']} beds: coalesced {c['coalesced']:.0f}%, "
                             f"naive {c['naive']:.0f}%")
            lines.append(f"{key.replace('_', ' ')}: " + ", ".join(parts))
    lines.append(f"memory: {s['bytes_per_bed'] / 1024:.0f} KiB per bed with full retention")
    for workload, wire in s.get("wire_per_bed_second", {}).items():
        if wire.get("bytes") is not None:
            lines.append(f"{workload} workload: one bed sends {wire['datagrams']:.1f} datagrams, "
                         f"{wire['bytes']:,.0f} bytes ({8 * wire['bytes'] / 1000:.1f} kbit/s) "
                         "of UDP payload a second")
    lines.append(f"load average before/after: {result['machine']['load_before']} / "
                 f"{result['machine']['load_after']}; took {result['seconds']:.0f} s")
    diffs = result.get("differences") or {}
    lines.append("settings that differ from python -m server's: " + ("; ".join(
        f"{k}={a} (cli: {b})" for k, (a, b) in diffs.items()) or "none"))
    for t in s.get("targets", []):
        verdict = "NOT MEASURED" if t["met"] is None else "PASS" if t["met"] \
            else f"FAIL (short by {t['short_by']})"
        lines.append(f"target {t['target']}: {t['measured']}: {verdict}")
        if t["met"] is False:  # what is left, from the profile of the point that decided it
            if t.get("profile") and Path(t["profile"]).exists():
                lines.append(f"  where the station's time went ({t['point']}): "
                             f"{where_the_time_went(Path(t['profile']))}")
            else:
                lines.append(f"  ({t.get('point') or 'this point'}: python -m bench --profile "
                             "DIR records where the station's time went)")
    return "\n".join(lines)


def write_outputs(result: dict, out: Path) -> dict[str, Path]:
    """The JSON of every row and the summary, and a PNG of latency and loss against beds."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "capacity.json", "png": out / "capacity.png"}
    paths["json"].write_text(json.dumps(result, indent=1, default=_jsonable))
    plot(result, paths["png"])
    return paths


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat_ax, loss_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    series: dict[tuple[str, str, int], list[dict]] = {}
    for row in result["rows"]:
        if not row["flood"] and row["design"] != "bare":
            series.setdefault((row.get("workload", "full"), row["design"], row["clients"]),
                              []).append(row)
    for (workload, design, clients), rows in sorted(series.items()):
        rows.sort(key=lambda r: r["beds"])
        beds = [r["beds"] for r in rows]
        style = "-" if design == "coalesced" else "--"
        label = f"{workload}, {design}, {clients} dashboard{'s' if clients != 1 else ''}"
        lat_ax.plot(beds, [r["p99_ms"] if r["p99_ms"] is not None else math.nan for r in rows],
                    style, marker="o", label=label)
        loss_ax.plot(beds, [max(r["loss_percent"], 1e-3) for r in rows], style, marker="o",
                     label=label)
    lat_ax.axhline(MAX_P99_MS, color="grey", lw=0.8, ls=":")
    loss_ax.axhline(MAX_LOSS_PERCENT, color="grey", lw=0.8, ls=":")
    for ax, title in ((lat_ax, "end-to-end latency p99 (ms)"),
                      (loss_ax, "telemetry loss (%, 0 drawn at 0.001)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("beds")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    lat_ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _jsonable(value: object) -> object:
    return str(value)


def _split(clients: int, processes: int) -> list[int]:
    """``clients`` dashboards over at most ``processes`` processes, as evenly as they go."""
    n = min(clients, max(processes, 1))
    return [clients // n + (i < clients % n) for i in range(n)] if n else []


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"
