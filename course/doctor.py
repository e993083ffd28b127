"""What this environment allows, and what each lab will do about it.

A hub container rarely has root, raw sockets or nftables; a laptop with sudo has all of them.
The labs already ask one function each why they cannot capture or impair live, and fall back
to the recordings in ``course/recordings/``. This report asks the same functions for the whole
environment at once, so that an instructor knows before the class what a deployment will do:
``python -m course doctor``, and the first cell of lab 00.

Each finding is a :class:`Finding` (a name, whether it is available, and a detail that says why
or why not); :func:`lab_plans` turns them into one line per lab.
"""

from __future__ import annotations

import ctypes.util
import importlib.metadata
import os
import shutil
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vitalsim.impair.live import capture_unavailable_reason
from vitalsim.impair.netns import unavailable_reason as kernel_loss_unavailable_reason

from .links import hub_prefix
from .mqtt_broker import mosquitto_path

CHROMIUM = "/usr/bin/chromium"
CAP_NET_ADMIN = 12
CAP_NET_RAW = 13
#: jupyter-server-proxy's fix for CVE-2024-28179 (cross-site WebSocket hijacking)
PROXY_FIXED_IN = (4, 1, 1)


@dataclass(frozen=True)
class Finding:
    """One thing the environment has or lacks."""

    name: str
    available: bool
    detail: str

    def __str__(self) -> str:
        return f"{'yes' if self.available else 'no ':3}  {self.name}: {self.detail}"


def effective_capabilities(status: Path = Path("/proc/self/status")) -> int:
    """This process's effective capability bits (Linux), or 0 where they cannot be read."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _has_capability(bit: int) -> bool:
    return bool(effective_capabilities() >> bit & 1)


def _free_ports() -> Finding:
    """Whether the kernel hands out ephemeral TCP and UDP ports on loopback, as every lab asks."""
    got = []
    try:
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as sock:
                sock.bind(("127.0.0.1", 0))
                got.append(sock.getsockname()[1])
    except OSError as exc:
        return Finding("free ports", False, f"binding 127.0.0.1 port 0 failed: {exc}")
    return Finding("free ports", True,
                   f"127.0.0.1 port 0 gave TCP {got[0]} and UDP {got[1]}; each system takes "
                   "its own, so students never clash")


def _proxy_version() -> tuple[int, ...] | None:
    try:
        text = importlib.metadata.version("jupyter-server-proxy")
    except importlib.metadata.PackageNotFoundError:
        return None
    return tuple(int(p) for p in text.split(".")[:3] if p.isdigit())


def _hub(environ: Mapping[str, str] | None) -> list[Finding]:
    prefix = hub_prefix(environ)
    version = _proxy_version()
    shown = ".".join(map(str, version)) if version else None
    if version is None:
        proxy = Finding("jupyter-server-proxy", False,
                        "not installed; under a hub the dashboard link cannot open "
                        "(pip install the course extra)")
    elif version < PROXY_FIXED_IN:
        proxy = Finding("jupyter-server-proxy", False,
                        f"{shown} predates the fix for CVE-2024-28179; upgrade to 4.1.1 or later")
    else:
        proxy = Finding("jupyter-server-proxy", True,
                        f"{shown}; forwards {{prefix}}proxy/PORT/ to this server's loopback")
    if prefix is None:
        hub = Finding("hub prefix", False,
                      "none (JUPYTERHUB_SERVICE_PREFIX unset): a local JupyterLab, so the labs "
                      "link the station's own http://127.0.0.1:PORT/")
    else:
        hub = Finding("hub prefix", True,
                      f"{prefix}: the labs link {prefix}proxy/PORT/ through jupyter-server-proxy")
    return [hub, proxy]


@dataclass
class Report:
    """Every finding, and what each lab does with them."""

    findings: list[Finding] = field(default_factory=list)

    def get(self, name: str) -> Finding:
        for finding in self.findings:
            if finding.name == name:
                return finding
        raise KeyError(name)

    def _has(self, name: str) -> bool:
        """Whether a finding is there and available (a report may leave one out)."""
        return any(f.name == name and f.available for f in self.findings)

    def lab_plans(self) -> dict[str, str]:
        """One sentence per lab: live or recorded, and where its dashboard link goes."""
        capture = self.get("live capture").available
        kernel = self.get("kernel loss").available
        link = ("through the hub's proxy" if self.get("hub prefix").available
                else "at the station's own URL")
        if self.get("hub prefix").available and not self.get("jupyter-server-proxy").available:
            link = "through the hub's proxy, which is missing here, so the link will not open"
        if not self.get("free ports").available:
            return {lab: "cannot start a system: no free ports on 127.0.0.1"
                    for lab in ("00", "01", "02", "03", "04", "05", "06", "07", "08")}
        return {
            "00": f"runs in full; dashboard {link}",
            "01": f"runs in full (loss from the user-space proxy, no root); dashboard {link}",
            "02": ("captures the alarm channel under kernel loss, live"
                   if kernel
                   else "reads a trace for kernel loss (the student's own, or "
                        "course/recordings/alarm-retransmissions.pcap)")
                  + "; the reset drill runs in full",
            "03": ("captures the WebSocket upgrade live" if capture
                   else "reads a capture for the upgrade (the student's own, or "
                        "course/recordings/websocket.pcap)")
                  + f"; push, polling and the slow dashboard run in full; dashboard {link}",
            "04": ("sniffs the ward and injects a forged datagram, live" if capture
                   else "reads the recorded captures instead of sniffing, and "
                        "course/recordings/spoofed-telemetry.pcap instead of injecting")
                  + ("; reads a capture in tshark with the course's dissector" if
                     self._has("tshark") else
                     "; its tshark section cannot run (apt-get install tshark), and its check "
                     "says so")
                  + ("; Exercise 1 reads the student's own capture" if
                     self._has("student traces") else "")
                  + f"; dashboard {link}",
            "05": f"runs in full (replay on virtual time, then live); dashboard {link}",
            "06": "runs in full, no root (the replay's capture is a tap on the path)"
                  + ("" if shutil.which("openssl") else
                     "; its TLS section is skipped: it needs the openssl command")
                  + f"; dashboard {link}",
            "07": "runs in full, no root (HL7 over MLLP on loopback; the capture is "
                  "course/recordings/hl7-mllp.pcap)"
                  + ("" if shutil.which("tshark") else
                     "; Wireshark's reading of it is skipped: it needs tshark"),
            "08": (f"runs its hospital live on a real mosquitto; hospital view {link}"
                   if self.get("mosquitto").available
                   else "shows the recorded results of course/recordings/hospital-lab.json "
                        "(no mosquitto)")
                  + "; reads course/recordings/mqtt-qos.pcap with scapy"
                  + (" and tshark" if shutil.which("tshark") else ""),
        }

    def text(self) -> str:
        lines = ["What this environment allows:"]
        lines += [f"  {f}" for f in self.findings]
        lines.append("What each lab will do:")
        lines += [f"  lab {lab}: {plan}" for lab, plan in self.lab_plans().items()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # noqa: ANN001 (IPython's printer)
        printer.text(self.text())


def check(environ: Mapping[str, str] | None = None) -> Report:
    """Look at this environment: capabilities, tools, the hub, ports."""
    root = os.geteuid() == 0
    raw = root or _has_capability(CAP_NET_RAW)
    admin = root or _has_capability(CAP_NET_ADMIN)
    who = "root" if root else f"uid {os.geteuid()}"
    findings = [
        Finding("root or CAP_NET_RAW", raw,
                f"{who}, " + ("raw sockets allowed: live sniffing and injection"
                              if raw else "no raw sockets: no live sniffing or injection")),
        Finding("CAP_NET_ADMIN", admin,
                f"{who}, " + ("may create network namespaces and nftables rules"
                              if admin else "no namespaces or nftables rules")),
    ]
    nft = shutil.which("nft")
    findings.append(Finding("nftables", nft is not None,
                            nft or "'nft' not installed (apt-get install nftables)"))
    pcap = ctypes.util.find_library("pcap")
    findings.append(Finding("libpcap", pcap is not None,
                            pcap or "not found (apt-get install libpcap0.8); scapy cannot "
                                    "filter a capture"))
    capture_reason = capture_unavailable_reason()
    findings.append(Finding("live capture", capture_reason is None,
                            capture_reason or "root and libpcap: labs 03 and 04 sniff live"))
    kernel_reason = kernel_loss_unavailable_reason()
    findings.append(Finding("kernel loss", kernel_reason is None,
                            kernel_reason or "root, nftables, ip and libpcap: lab 02 drops "
                                             "packets in the kernel"))
    chromium = os.access(CHROMIUM, os.X_OK)
    findings.append(Finding("Chromium", chromium,
                            f"{CHROMIUM}: the browser tests can run" if chromium else
                            f"no {CHROMIUM}: the labs do not need it; the browser tests do "
                            "(apt-get install chromium)"))
    tshark = shutil.which("tshark")
    findings.append(Finding("tshark", tshark is not None,
                            f"{tshark}: lab 04 reads a capture with the course's dissector"
                            if tshark else "not installed: lab 04's tshark section cannot run "
                            "(apt-get install tshark)"))
    student = (os.environ if environ is None else environ).get("VITALSIM_STUDENT")
    findings.append(Finding("student traces", bool(student),
                            f"VITALSIM_STUDENT={student}: the trace exercises read this "
                            "student's own captures (python -m course traces)" if student else
                            "VITALSIM_STUDENT unset: the trace exercises read the course's "
                            "recordings"))
    broker = mosquitto_path()
    findings.append(Finding("mosquitto", broker is not None,
                            f"{broker}: lab 08 starts a real MQTT broker" if broker else
                            "not installed (apt-get install mosquitto): lab 08 shows recorded "
                            "results"))
    findings += _hub(environ)
    findings.append(_free_ports())
    return Report(findings)
