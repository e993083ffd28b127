"""The one recorder of the alarm channel under kernel loss, between two network namespaces.

Lab 02 records a few seconds live when the machine can
(:func:`course.reset_drill.alarm_channel_capture`), and the capture generator (``python -m
course.captures``) records ``course/recordings/alarm-retransmissions.pcap`` the same way, so
that what a learner sees live and what the recorded capture shows come from one procedure: a
station, a sniffer on the station's side of the veth, and a ward whose alarm limits flap, with
nftables dropping ``loss`` of the packets towards the station. Root and nftables are needed
(:func:`vitalsim.impair.netns.unavailable_reason` says why not); the namespaces and every
process in them are gone when :func:`record_alarm_channel` returns or raises.

The station and the ward run as subprocesses (``python -m server``, ``python -m
vitalsim.devices``) because each needs its own namespace; :func:`wait_for_line` reads their
output with a deadline.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from course.constants import CAPTURE_SEED, RECORDED_ALARM_PORT, RECORDED_TELEMETRY_PORT
from course.waiting import wait_until_blocking
from server.alarm_source import DEVICE_ONLY_SQL
from vitalsim.impair.netns import STATION_ADDR, Namespaces

#: inside the station's namespace the station has the address to itself; its HTTP port is
#: asked only for the dashboard line that says it is up
STATION_HTTP_PORT = 8080


@dataclass
class AlarmCapture:
    """A capture of the alarm channel, live or recorded, and what the ward said of its run."""

    path: Path
    live: bool
    note: str
    ward: dict = field(default_factory=dict)  # live only: the devices' JSON summary
    journaled: int | None = None  # live only: device alarms in the station's journal


def wait_for_line(proc: subprocess.Popen, words: str, timeout: float) -> str:
    """Read ``proc``'s standard output (a text pipe) until a line containing ``words``, and
    return that line; raise TimeoutError after ``timeout`` seconds, or RuntimeError if the
    output ends first, either naming the lines seen.

    It reads the pipe's bytes itself, only when there are some: a blocking ``readline`` on a
    process that never prints would hang past any deadline."""
    assert proc.stdout is not None, "start the process with stdout=subprocess.PIPE"
    fd = proc.stdout.fileno()
    seen: list[str] = []
    pending = ""
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)

    def line_with_words() -> str | None:
        nonlocal pending
        if sel.select(timeout=0):
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"the output ended before a line with {words!r}; "
                                   f"got {seen!r}")
            pending += chunk.decode(errors="replace")
        *lines, pending = pending.split("\n")
        for line in lines:
            seen.append(line + "\n")
            if words in line:
                return line + "\n"
        return None

    try:
        return str(wait_until_blocking(line_with_words, timeout=timeout,
                                       what=f"a line with {words!r}"))
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; got {seen!r}") from None
    finally:
        sel.close()


def record_alarm_channel(folder: str | Path, *, pcap: str | Path | None = None,
                         loss: float = 0.2, beds: int = 3, seconds: float = 2.5,
                         speed: float = 20.0, seed: int = CAPTURE_SEED,
                         max_packets: int = 0, timeout: float = 40.0) -> AlarmCapture:
    """Record the alarm channel between two network namespaces, ``loss`` of the packets towards
    the station dropped by nftables, and return the capture with the ward's summary and the
    number of device alarms the station journaled.

    A ward of ``beds`` (seeded with ``seed``, at ``speed`` times real time) raises and clears
    alarms for ``seconds``, then waits up to ``timeout / 2`` for its last ACKs. The pcap goes to
    ``pcap`` (default ``folder/alarm-channel-live.pcap``), the station's journal into
    ``folder``; ``max_packets`` stops the sniffer early (0: no limit). The recorded ports are
    those of :mod:`course.constants`, so that ``bind_ports`` decodes the live capture as it
    decodes the recorded ones."""
    folder = Path(folder)
    pcap = Path(pcap) if pcap is not None else folder / "alarm-channel-live.pcap"
    journal = folder / "alarm-channel-live.sqlite3"
    ports = ["--udp-port", str(RECORDED_TELEMETRY_PORT), "--tcp-port", str(RECORDED_ALARM_PORT)]
    py = sys.executable
    with Namespaces(loss=loss) as net:
        station = net.run("station", [
            py, "-m", "server", "--beds", "0", "--devices", str(beds), "--host", STATION_ADDR,
            "--http-port", str(STATION_HTTP_PORT), *ports, "--journal", str(journal)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        sniffer = net.run("station", [
            py, "-m", "vitalsim.impair.sniff", "--iface", net.veth["station"], "--out",
            str(pcap), "--seconds", str(timeout), "--count", str(max_packets),
            "--filter", f"tcp port {RECORDED_ALARM_PORT}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        wait_for_line(station, "dashboard:", 20)
        wait_for_line(sniffer, "sniffing", 20)
        ward = net.run("bedside", [
            py, "-m", "vitalsim.devices", "--host", STATION_ADDR, *ports, "--beds", str(beds),
            "--scenario", "stable_adult", "--seed", str(seed), "--speed", str(speed),
            "--seconds", str(seconds), "--no-waves", "--alarm-storm",
            "--drain", str(timeout / 2)], stdout=subprocess.PIPE, text=True)
        out, _ = ward.communicate(timeout=timeout)
        sniffer.send_signal(signal.SIGTERM)
        sniffer.wait(timeout=20)
        station.send_signal(signal.SIGINT)
        station.wait(timeout=20)
    summary = json.loads(out.strip().splitlines()[-1])
    with sqlite3.connect(journal) as db:
        journaled = db.execute("SELECT COUNT(*) FROM alarm_events "
                               f"WHERE {DEVICE_ONLY_SQL}").fetchone()[0]
    return AlarmCapture(pcap, True, f"recorded live just now: {beds} beds for {seconds:g} s, "
                        f"nftables dropping {loss:.0%} of packets towards the station",
                        summary, journaled)
