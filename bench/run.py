"""The capacity benchmark's runs, table, JSON and plot.

One *point* is one run of fresh processes: a target (the station, or the bare receiver), the
load generator, and (unless there are none) the dashboards. The parent marks the target, lets
the generator send for a fixed time (paced like real beds, or flat out for a *flood*), lets the
alarm outboxes drain, then asks each part for its counts. Children are killed in ``finally``.
"""

from __future__ import annotations

import json
import math
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .dashboards import dashboards_main
from .loadgen import generator_main
from .memory import memory_main
from .procs import Child
from .targets import bare_main, station_main

# what "holds" means at one point: the targets for telemetry loss and latency
MAX_LOSS_PERCENT = 0.1
MAX_P99_MS = 250.0


@dataclass
class BenchConfig:
    """Sizes and durations of one benchmark; the defaults are the full sweep (under 5 min)."""

    beds: tuple[int, ...] = (100, 250, 500, 1000, 2000, 4000)
    clients: tuple[int, ...] = (1, 10)
    designs: tuple[str, ...] = ("coalesced", "naive")
    seconds: float = 5.0  # generator run per point
    warmup: float = 1.0  # latencies of the first second of each point are not counted
    flood_seconds: float = 4.0
    flood_beds: int = 1000
    flood_clients: int = 0  # the ceiling has none either: both measure taking datagrams in
    waves_per_client: int = 4
    alarms_per_bed_hour: float = 12.0  # a raise or a clear per bed every five minutes
    min_alarm_rate: float = 2.0  # alarms per second, whatever the number of beds
    udp_receive_buffer: int = 4 << 20  # SO_RCVBUF, the same for the station and the ceiling
    journal: str = "file"  # "file" (SQLite on disk, fsync per alarm) or "memory"
    loop: str = "asyncio"  # or "uvloop", when it is installed
    memory_beds: int = 50
    max_beds: int = 8000  # the run at 80 % of the station's maximum never has more beds
    seed: int = 1
    profile: Path | None = None  # a py-spy profile of the station at each point goes here
    out: Path = field(default_factory=lambda: Path("bench-results"))

    @classmethod
    def smoke(cls, **changes: object) -> BenchConfig:
        """Every part of the benchmark at tiny sizes, in seconds: what ``make test`` runs."""
        sizes: dict = {"beds": (20,), "clients": (2,), "seconds": 1.5, "warmup": 0.5,
                       "flood_seconds": 1.0, "flood_beds": 20, "flood_clients": 2,
                       "memory_beds": 4, "max_beds": 40}
        return cls(**{**sizes, **changes})

    def alarm_rate(self, beds: int) -> float:
        return max(beds * self.alarms_per_bed_hour / 3600, self.min_alarm_rate)


def run_point(cfg: BenchConfig, *, design: str, beds: int, clients: int,
              flood: bool = False, seconds: float | None = None) -> dict:
    """One run; ``design`` is "coalesced", "naive" or "bare" (the ceiling)."""
    seconds = seconds if seconds is not None else (cfg.flood_seconds if flood else cfg.seconds)
    options = {"coalesce": design != "naive", "udp_receive_buffer": cfg.udp_receive_buffer,
               "journal": cfg.journal, "loop": cfg.loop}
    children: list[Child] = []
    try:
        target = Child(design, bare_main if design == "bare" else station_main, options)
        children.append(target)
        generator = Child("generator", generator_main)
        children.append(generator)
        dashboards = Child("dashboards", dashboards_main) if clients and design != "bare" \
            else None
        if dashboards is not None:
            children.append(dashboards)
        ports = target.wait(60, "start")
        gen = generator.ask("init", timeout=120, host="127.0.0.1", udp_port=ports["udp_port"],
                            tcp_port=ports["tcp_port"], beds=beds, seed=cfg.seed)
        if dashboards is not None:
            dashboards.ask("init", timeout=60, url=f"ws://127.0.0.1:{ports['http_port']}/ws",
                           clients=clients, beds=beds, waves_per_client=cfg.waves_per_client)
        target.ask("mark")
        profiler = _profile(cfg, target, design, beds, clients, flood, seconds)
        alarm_rate = cfg.alarm_rate(beds) if design != "bare" else 0.0
        started = time.time()
        sent = generator.ask("run", timeout=seconds + 60, seconds=seconds, flood=flood,
                             alarm_rate=alarm_rate)
        ended = time.time()
        if profiler is not None:
            profiler.wait(30)
        alarms = generator.ask("drain", timeout=30, timeout_s=5.0)
        received = target.ask("report", timeout=30)
        latency = dashboards.ask("report", timeout=30, since=started + cfg.warmup,
                                 until=ended) if dashboards is not None else {}
        for child in reversed(children):
            child.ask("stop", timeout=10)
    finally:
        for child in children:
            child.kill()
    offered, got = sent["sent"], received["received"]
    row = {
        "design": design, "beds": beds, "clients": clients if design != "bare" else 0,
        "flood": flood, "seconds": sent["seconds"],
        "offered_per_s": offered / sent["seconds"], "received_per_s": got / sent["seconds"],
        "offered": offered, "received": got,
        "loss_percent": 100 * max(offered - got, 0) / offered if offered else 0.0,
        "alarm_rate": alarm_rate, "alarms_sent": alarms["alarms_sent"],
        "alarms_acked": alarms["alarms_acked"],
        "alarms_lost": alarms["alarms_sent"] - alarms["alarms_acked"],
        "p50_ms": latency.get("p50_ms"), "p99_ms": latency.get("p99_ms"),
        "cpu_percent": received["cpu_percent"], "peak_rss": received["peak_rss"],
        "rcvbuf": ports["rcvbuf"], "loop": ports["loop"],
        "generator": {k: v for k, v in {**gen, **sent}.items()},
        "dashboards": latency, "target": received,
    }
    return row


def _profile(cfg: BenchConfig, target: Child, design: str, beds: int, clients: int,
             flood: bool, seconds: float) -> subprocess.Popen | None:
    """py-spy, sampling the target for the run, as collapsed stacks (py-spy's "raw")."""
    beside = Path(sys.executable).parent / "py-spy"  # installed in the same venv
    spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if cfg.profile is None or spy is None:
        return None
    cfg.profile.mkdir(parents=True, exist_ok=True)
    name = f"{design}-{beds}beds-{clients}dash{'-max' if flood else ''}.txt"
    return subprocess.Popen(
        [spy, "record", "--pid", str(target.pid), "--duration", str(max(1, int(seconds))),
         "--rate", "200", "--nonblocking", "--format", "raw", "--output", str(cfg.profile / name)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def holds(row: dict) -> bool:
    """Did this point meet the targets: loss under 0.1 %, no alarm lost, p99 under 250 ms?"""
    return (row["loss_percent"] < MAX_LOSS_PERCENT and row["alarms_lost"] == 0
            and row["p99_ms"] is not None and row["p99_ms"] < MAX_P99_MS)


def saturation(rows: list[dict], design: str, clients: int) -> dict:
    """The most beds this design held with this many dashboards, before the first miss."""
    held, missed = 0, None
    for row in sorted((r for r in rows if r["design"] == design and r["clients"] == clients
                       and not r["flood"]), key=lambda r: r["beds"]):
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
    """The whole benchmark: memory, ceiling, station maximum and 80 %, then the sweep; then
    :func:`summarize` reads the figures off the rows."""
    started = time.monotonic()
    result: dict = {"config": {k: str(v) if isinstance(v, Path) else v
                               for k, v in asdict(cfg).items()},
                    "machine": {"python": platform.python_version(), "cpus": _cpus(),
                                "load_before": _loadavg()},
                    "rows": []}
    rows = result["rows"]

    def point(**kw: object) -> dict:
        row = run_point(cfg, **kw)  # type: ignore[arg-type]
        rows.append(row)
        log(format_row(row))
        return row

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
    at80 = point(design="coalesced", beds=beds80, clients=cfg.flood_clients)
    for clients in cfg.clients:
        for design in cfg.designs:
            for beds in cfg.beds:
                point(design=design, beds=beds, clients=clients)
    result["summary"] = summarize(cfg, rows, ceiling=ceiling, ours=ours, naive=naive,
                                  at80=at80, bytes_per_bed=result["memory"]["bytes_per_bed"])
    result["machine"]["load_after"] = _loadavg()
    result["seconds"] = time.monotonic() - started
    return result


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def summarize(cfg: BenchConfig, rows: list[dict], *, ceiling: dict, ours: dict,
              naive: dict | None, at80: dict, bytes_per_bed: float) -> dict:
    """The headline figures from the measured rows: the ceiling, the station's maximum and its
    share of the ceiling, the 80 % point, the 1,000-bed target, and each design's saturation."""
    summary: dict = {
        "ceiling_per_s": ceiling["received_per_s"],
        "ceiling_offered_per_s": ceiling["offered_per_s"],
        "ceiling_generator_bound": ceiling["loss_percent"] < 1.0,
        "station_max_per_s": ours["received_per_s"],
        "station_to_ceiling": _ratio(ours["received_per_s"], ceiling["received_per_s"]),
        "at_80_percent": {"beds": at80["beds"], "offered_per_s": at80["offered_per_s"],
                          "fraction_of_max": _ratio(at80["offered_per_s"],
                                                    ours["received_per_s"]),
                          "loss_percent": at80["loss_percent"], "p99_ms": at80["p99_ms"]},
        "bytes_per_bed": bytes_per_bed,
    }
    if naive is not None:
        summary["naive_max_per_s"] = naive["received_per_s"]
    target = [r for r in rows if r["design"] == "coalesced" and r["beds"] == 1000
              and r["clients"] == 10 and not r["flood"]]
    if target:
        t = target[0]
        summary["target_1000_beds_10_clients"] = {
            "loss_percent": t["loss_percent"], "alarms_lost": t["alarms_lost"],
            "p99_ms": t["p99_ms"], "holds": holds(t)}
    for clients in cfg.clients:
        summary[f"saturation_{clients}_clients"] = saturation_entry(cfg, rows, clients)
    return summary


def saturation_entry(cfg: BenchConfig, rows: list[dict], clients: int) -> dict:
    """Where each design saturates with ``clients`` dashboards, the coalesced-to-naive ratio, and
    below saturation the station CPU each design spends on the same load."""
    sat = {d: saturation(rows, d, clients) for d in cfg.designs}
    entry: dict = {**sat}
    if "naive" in sat and "coalesced" in sat and sat["naive"]["held"]:
        entry["ratio"] = sat["coalesced"]["held"] / sat["naive"]["held"]
        entry["ratio_is_lower_bound"] = sat["coalesced"]["first_missed"] is None
        both = [b for b in cfg.beds
                if all(sat[d]["held"] >= b for d in ("coalesced", "naive"))]
        if both:
            cpu = {d: next(r["cpu_percent"] for r in rows if r["design"] == d
                           and r["beds"] == both[-1] and r["clients"] == clients
                           and not r["flood"]) for d in ("coalesced", "naive")}
            entry["cpu_at_beds"] = {"beds": both[-1], **cpu}
    return entry


HEADER_LINE = (f"{'design':10} {'beds':>5} {'dash':>4} {'offered/s':>10} {'received/s':>10} "
               f"{'loss %':>7} {'alarms s/a/l':>13} {'p50 ms':>7} {'p99 ms':>7} "
               f"{'cpu %':>6} {'rss MB':>7}")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def format_row(row: dict) -> str:
    design = row["design"] + (" max" if row["flood"] else "")
    alarms = f"{row['alarms_sent']}/{row['alarms_acked']}/{row['alarms_lost']}"
    return (f"{design:10} {row['beds']:5d} {row['clients']:4d} {row['offered_per_s']:10,.0f} "
            f"{row['received_per_s']:10,.0f} {row['loss_percent']:7.3f} {alarms:>13} "
            f"{_ms(row['p50_ms']):>7} {_ms(row['p99_ms']):>7} {row['cpu_percent']:6.0f} "
            f"{row['peak_rss'] / 1e6:7.0f}")


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
    a = s["at_80_percent"]
    lines.append(f"at {100 * (a['fraction_of_max'] or 0):.0f}% of the station's maximum "
                 f"({a['beds']} beds, "
                 f"{a['offered_per_s']:,.0f}/s): loss {a['loss_percent']:.3f}%, "
                 f"p99 {_ms(a['p99_ms'])} ms")
    if "target_1000_beds_10_clients" in s:
        t = s["target_1000_beds_10_clients"]
        lines.append(f"1000 beds, 10 dashboards: loss {t['loss_percent']:.3f}%, "
                     f"{t['alarms_lost']} alarms lost, p99 {_ms(t['p99_ms'])} ms: "
                     + ("holds" if t["holds"] else "MISSED"))
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
    lines.append(f"load average before/after: {result['machine']['load_before']} / "
                 f"{result['machine']['load_after']}; took {result['seconds']:.0f} s")
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
    series: dict[tuple[str, int], list[dict]] = {}
    for row in result["rows"]:
        if not row["flood"] and row["design"] != "bare":
            series.setdefault((row["design"], row["clients"]), []).append(row)
    for (design, clients), rows in sorted(series.items()):
        rows.sort(key=lambda r: r["beds"])
        beds = [r["beds"] for r in rows]
        style = "-" if design == "coalesced" else "--"
        label = f"{design}, {clients} dashboard{'s' if clients != 1 else ''}"
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


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"
