"""Each student's own trace exercises: captures generated from the simulator, seeded by the
student's id, so that the answers of one cohort are no use to the next.

Once a cohort has done a trace exercise, its answers (which packets, which sequence numbers) are
on the web. Here every student gets captures of their own: the same set-up as the recordings, on
the same ports, but from a seed of their id, so that the patients' values, the alarm and send
times, the loss pattern and the keys all differ. They are generated, not recorded: the monitors
run on virtual time and a seeded model decides each packet's fate, so no root is needed, a set
takes a second or two, and the same id always gives the same bytes: an instructor regenerates
any student's set and sees exactly what that student saw.

    python -m course traces --student s1234567            # writes traces/s1234567/
    VITALSIM_STUDENT=s1234567 jupyter lab                  # the labs then read those

Without a student id the labs read the course's recordings, as before. The labs' checks take
their expected answers from whichever capture was read, and the packet numbers their questions
cite are printed from it, so each student is checked against their own.

The captures made per student (``PER_STUDENT``):

- ``telemetry-loss.pcap`` (lab 04, Exercise 1): three beds' telemetry after a proxy that drops
  20% of it, as the station receives it.
- ``alarm-retransmissions.pcap`` (lab 02, section 3, Exercise 3 and its questions): two beds'
  alarm channels with 20% of the packets towards the station dropped, on the station's side:
  TCP's retransmissions from both sides, duplicate ACKs, an alarm held back behind a lost one.
- ``alarm-restart.pcap`` (lab 04, section 2 and Exercise 2): one bed's alarm channel while the
  station stops for a few seconds: the FIN, SYNs refused with RST as the back-off doubles, the
  second HELLO with the waiting alarms behind it, and their ACKs.
- ``websocket.pcap`` (lab 03, sections 1 and 2): one dashboard's WebSocket conversation with a
  two-bed station: the upgrade with its own key, the snapshot and the pushes, a masked
  ``subscribe`` to one of the beds with its own masking key, and the close handshake.

The alarm channel's captures come from :mod:`course.alarm_traces`: the simulator's monitors and
the alarm channel's own state machines and codec, carried by a TCP of virtual time
(:mod:`course.tcp_trace`) with consistent sequence numbers, handshakes, retransmissions and
closes, which Wireshark and the course's dissector read like the recordings. The WebSocket
capture comes from :mod:`course.websocket_traces`: the course's station (not started, on a virtual
clock) fed by the simulator's monitors, its own messages in frames of the course's encoder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.plist import PacketList
from scapy.utils import wrpcap

from course import alarm_traces, websocket_traces
from course.constants import CAPTURE_SEED, RECORDED_TELEMETRY_PORT, RECORDINGS
from course.packets import recorded
from vitalsim.devices.monitor import BedsideMonitor
from vitalsim.impair import UdpSettings
from vitalsim.impair.model import UdpImpairer

#: the environment variable that names the student whose traces the labs read
STUDENT_VARIABLE = "VITALSIM_STUDENT"
#: where ``python -m course traces`` writes, and where the labs look (one folder per student)
TRACES_VARIABLE = "VITALSIM_TRACES"
DEFAULT_FOLDER = Path("traces")
#: the trace exercises' captures that are made per student
PER_STUDENT = ("telemetry-loss", "alarm-retransmissions", "alarm-restart", "websocket")
#: a student id names a folder: nothing that could climb out of it
_STUDENT_ID = re.compile(r"[A-Za-z0-9_@-][A-Za-z0-9._@-]{0,63}")

# the recording's set-up (course.captures.telemetry_loss): three beds, 5x speed, 8 s, 20% loss
_BEDS, _SPEED, _SECONDS, _LOSS = 3, 5.0, 8.0, 0.2
#: when a generated capture starts: 2026-01-05 08:00 UTC, a Monday morning ward round
_EPOCH = 1_767_600_000.0


def student_seed(student: str) -> int:
    """The seed of a student's traces: from their id alone, so it is the same on every machine
    and in every year, and the course's own seed is kept apart from every student's."""
    if not _STUDENT_ID.fullmatch(student or ""):
        raise ValueError(f"student id {student!r}: expected letters, digits and . _ @ - (at "
                         "most 64, not starting with a dot), as it names the student's folder")
    digest = hashlib.sha256(f"vitalsim traces|{CAPTURE_SEED}|{student}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def telemetry_loss(seed: int) -> list:
    """Three beds' numerics through a proxy that loses 20% of them (bursts of up to a few),
    as the station's side of the proxy sees them: what ``telemetry-loss.pcap`` records live,
    generated on virtual time. The seed sets the patients, the start, the stagger between the
    beds and which datagrams are lost."""
    start = _EPOCH + seed % 3600
    boot_us = round(start * 1_000_000)
    monitors = [BedsideMonitor(1000 + bed, bed, "stable_adult", seed=seed * 10 + bed,
                               waves=False, boot_id=boot_us) for bed in range(1, _BEDS + 1)]
    impairer = UdpImpairer(UdpSettings(loss=_LOSS, burst=1.0 + seed % 3), seed=seed)
    # the beds' clocks are not in step: each sends a little after the whole period
    stagger = [((seed >> (8 * bed)) % 40) / 10_000 for bed in range(_BEDS)]
    proxy_port = 32768 + seed % 28000
    packets = []
    for tick in range(int(_SECONDS * _SPEED) + 1):
        for bed, monitor in enumerate(monitors):
            wall = start + tick / _SPEED + stagger[bed]
            datagrams, _ = monitor.poll(float(tick), wall)
            for data in datagrams:
                for at in impairer.decide(wall):
                    pkt = (Ether() / IP(src="127.0.0.1", dst="127.0.0.1")
                           / UDP(sport=proxy_port, dport=RECORDED_TELEMETRY_PORT) / Raw(data))
                    pkt.time = at + 0.0002  # the proxy's own hop
                    packets.append(pkt)
    packets.sort(key=lambda p: p.time)
    return packets


def alarm_retransmissions(seed: int) -> list:
    """Lab 02's capture: the alarm channel of two beds under 20% loss towards the station."""
    return alarm_traces.alarm_retransmissions(seed, _EPOCH + seed % 3600)


def alarm_restart(seed: int) -> list:
    """Lab 04's capture: one bed's alarm channel across a station restart."""
    return alarm_traces.alarm_restart(seed, _EPOCH + seed % 3600)


def websocket(seed: int) -> list:
    """Lab 03's capture: one dashboard's WebSocket conversation with a two-bed station."""
    return websocket_traces.websocket(seed, _EPOCH + seed % 3600)


GENERATORS = {"telemetry-loss": telemetry_loss, "alarm-retransmissions": alarm_retransmissions,
              "alarm-restart": alarm_restart, "websocket": websocket}


def traces_folder() -> Path:
    return Path(os.environ.get(TRACES_VARIABLE) or DEFAULT_FOLDER)


def write_traces(student: str, folder: Path | None = None) -> Path:
    """Write ``student``'s captures into ``folder/student/`` (again, if they are there: the same
    bytes), with ``traces.json`` saying whose they are and from which seed; the folder."""
    seed = student_seed(student)
    out = (folder or traces_folder()) / student
    out.mkdir(parents=True, exist_ok=True)
    for name, generate in GENERATORS.items():
        wrpcap(str(out / f"{name}.pcap"), generate(seed))
    (out / "traces.json").write_text(json.dumps(
        {"student": student, "seed": seed, "captures": [f"{n}.pcap" for n in GENERATORS]},
        indent=1) + "\n", encoding="utf-8")
    return out


@dataclass(frozen=True)
class Traces:
    """The captures a lab's trace exercises read: a student's own, or the course's recordings."""

    folder: Path
    student: str | None

    @property
    def note(self) -> str:
        if self.student is None:
            return (f"the course's recordings ({RECORDINGS.name}/): no student id; "
                    f"set {STUDENT_VARIABLE} for your own traces")
        return f"your own traces, student {self.student} ({self.folder})"

    def path(self, name: str) -> Path:
        """The capture file ``name`` (a student's own when it is one of theirs)."""
        name = name.removesuffix(".pcap")
        if self.student is not None and name in PER_STUDENT:
            return self.folder / f"{name}.pcap"
        return RECORDINGS / f"{name}.pcap"

    def read(self, name: str) -> PacketList:
        """The capture's packets, with the recorded ports bound to the course's layers."""
        path = self.path(name)
        return recorded(path.stem, folder=path.parent)


def student_traces(student: str | None = None, folder: Path | None = None) -> Traces:
    """The traces of ``student`` (default: ``$VITALSIM_STUDENT``), generated the first time they
    are asked for; without a student, the course's recordings."""
    student = student or os.environ.get(STUDENT_VARIABLE) or None
    if student is None:
        return Traces(RECORDINGS, None)
    mine = (folder or traces_folder()) / student
    if not all((mine / f"{name}.pcap").exists() for name in PER_STUDENT):
        write_traces(student, folder)
    return Traces(mine, student)
