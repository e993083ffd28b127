"""How many students one machine holds: a class on a real JupyterHub, measured.

Spawns N students on a JupyterHub (the same hub as tests/test_hub.py: PyPI's jupyterhub, npm's
configurable-http-proxy, the simple local spawner), and in each student's own server runs labs
01, 03 and 05 (their instructor versions: a student who does every exercise), one after the
other, all the students at once, the way a class does when told "run all". Each lab runs in the
student's kernel through the hub, as JupyterLab would run it.

It reports, per lab, the wall seconds and the CPU seconds of the kernel (the lab's own code and
the whole system it starts: the station and the ward run in the kernel, on its event loop) and
of the single-user server relaying the kernel's messages, and which checks failed; per
student, the memory of the single-user server and the kernel's peak (the kernel holds the
system); and from those, how many students a 2-core, 24 GB machine holds with every lab under
60 s. A benchmark, not a test: it asserts nothing and prints figures.

    .venv/bin/python bench/bench_class.py --students 3
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course.hub_harness import ROOT, Hub, LabFailed, StudentLab  # noqa: E402

LABS = {"01": "01_udp_loss.ipynb", "03": "03_websocket_push.ipynb",
        "05": "05_whole_system.ipynb"}
#: the kernel's own account, printed after the lab's last cell
MEASURE = """\
import json, os, resource
_t = os.times()
print(json.dumps({"cpu": _t.user + _t.system + _t.children_user + _t.children_system,
                  "kernel_peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""
TARGET_CORES, TARGET_GIB, LAB_LIMIT_S = 2, 24, 60.0
HEADROOM = 0.85  # of the target's memory for students; the rest for the OS, hub and proxy


def server_process(hub: Hub, name: str) -> psutil.Process | None:
    """The student's single-user server (it relays every message between kernel and client)."""
    home = str(hub.homes / name)
    for process in hub.processes():
        try:
            if "jupyterhub-singleuser" in " ".join(process.cmdline()) and process.cwd() == home:
                return process
        except psutil.Error:
            continue
    return None


def cpu_seconds(process: psutil.Process | None) -> float:
    if process is None:
        return 0.0
    times = process.cpu_times()
    return times.user + times.system


def run_student(hub: Hub, name: str, labs: list[str]) -> dict:
    """One student's labs, in order; each lab in a fresh kernel, as "restart and run all"."""
    results = {}
    server_peak = 0
    server = server_process(hub, name)
    for lab in labs:
        notebook = ROOT / "labs" / "instructor" / LABS[lab]
        started = time.monotonic()
        server_before = cpu_seconds(server)
        # run on past a failing check: an overloaded machine fails checks, and that is a figure
        run = StudentLab(hub, name, notebook, then=MEASURE, allow_errors=True)
        try:
            report = run.report()
            server_cpu = cpu_seconds(server) - server_before
            server_peak = max(server_peak, server.memory_info().rss if server else 0)
            run.finish()
        except LabFailed as exc:  # the kernel died, or the hub refused
            print(f"{name} lab {lab}: FAILED after {time.monotonic() - started:.0f} s: "
                  f"{str(exc)[:600]}", flush=True)
            results[lab] = {"failed": str(exc)[:2000]}
            continue
        finally:
            run.kill()
        measured = json.loads(report["outputs"][-1])
        results[lab] = {"wall_s": round(time.monotonic() - started, 1),
                        "lab_s": report["lab_seconds"],
                        "cpu_s": round(measured["cpu"] + server_cpu, 1),
                        "kernel_cpu_s": round(measured["cpu"], 1),
                        "kernel_peak_mb": round(measured["kernel_peak_kib"] / 1024, 1),
                        "failed_checks": [e for e in report["errors"]
                                          if e.startswith("AssertionError")]}
        print(f"{name} lab {lab}: {results[lab]}", flush=True)
    return {"labs": results, "server_mb": round(server_peak / 2**20, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=3)
    parser.add_argument("--labs", default="01,03,05")
    parser.add_argument("--json", type=Path, default=ROOT / "bench-results" / "class.json")
    args = parser.parse_args()
    labs = args.labs.split(",")
    names = [f"student{i:02d}" for i in range(1, args.students + 1)]
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-class-") as folder, Hub(Path(folder)) as hub:
        for name in names:
            hub.spawn(name)
        hub.wait_ready(names, timeout=600)
        spawned = time.monotonic() - started
        with ThreadPoolExecutor(len(names)) as pool:
            per_student = dict(zip(names, pool.map(lambda n: run_student(hub, n, labs), names),
                                   strict=True))
    load_after = os.getloadavg()[0]

    print(f"{len(names)} students on {os.cpu_count()} cores, labs {', '.join(labs)} "
          f"(load {load_before:.1f} before, {load_after:.1f} after; hub and servers up in "
          f"{spawned:.0f} s)")
    print(f"{'lab':>4} {'wall s (max)':>13} {'CPU s (mean)':>13} {'CPU s (max)':>12} "
          f"{'kernel peak MB (max)':>21}  checks failed")
    cpu_max = {}
    for lab in labs:
        rows = [s["labs"][lab] for s in per_student.values() if "failed" not in s["labs"][lab]]
        failed = len(per_student) - len(rows)
        if failed:
            print(f"{lab:>4} failed in {failed} of {len(per_student)} students (see above)")
        if not rows:
            continue
        cpu = [r["cpu_s"] for r in rows]
        cpu_max[lab] = max(cpu)
        failing = sum(bool(r["failed_checks"]) for r in rows)
        print(f"{lab:>4} {max(r['wall_s'] for r in rows):13.1f} {sum(cpu) / len(cpu):13.1f} "
              f"{max(cpu):12.1f} {max(r['kernel_peak_mb'] for r in rows):21.1f}  "
              f"in {failing} of {len(rows)} students")
    server_mb = max(s["server_mb"] for s in per_student.values())
    kernel_mb = max(r["kernel_peak_mb"] for s in per_student.values() for r in s["labs"].values()
                    if "failed" not in r)
    student_mb = server_mb + kernel_mb
    print(f"memory per student: {student_mb:.0f} MB (server {server_mb:.0f} MB + kernel with "
          f"its system {kernel_mb:.0f} MB, at their peaks)")
    # every student starts the costliest lab at the same moment: it must get its CPU seconds
    # within the limit from the machine's cores
    heaviest = max(cpu_max, key=cpu_max.get)
    by_cpu = math.floor(TARGET_CORES * LAB_LIMIT_S / cpu_max[heaviest])
    by_memory = math.floor(HEADROOM * TARGET_GIB * 1024 / student_mb)
    print(f"a {TARGET_CORES}-core, {TARGET_GIB} GB machine: {by_cpu} students by CPU (lab "
          f"{heaviest}, {cpu_max[heaviest]:.1f} CPU s each, all at once, under {LAB_LIMIT_S:.0f} "
          f"s), {by_memory} by memory ({HEADROOM:.0%} of {TARGET_GIB} GB): "
          f"{min(by_cpu, by_memory)} students")
    per_100_cores = math.ceil(100 * cpu_max[heaviest] / LAB_LIMIT_S)
    per_100_gb = math.ceil(100 * student_mb / 1024 / HEADROOM)
    print(f"per 100 students all running lab {heaviest} at once: {per_100_cores} cores, "
          f"{per_100_gb} GB")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "students": per_student, "cores": os.cpu_count(), "load": [load_before, load_after],
        "memory_per_student_mb": student_mb, "cpu_max_s": cpu_max,
        "students_by_cpu": by_cpu, "students_by_memory": by_memory}, indent=1))
    print(f"written: {args.json}")


if __name__ == "__main__":
    main()
