"""Kernel-level loss between two network namespaces: real TCP retransmissions, real UDP gaps.

    with Namespaces(loss=0.2) as net:          # needs root, iproute2 and nftables
        station = net.run("station", [sys.executable, "-m", "server", "--beds", "0", ...])
        ward = net.run("bedside", [sys.executable, "-m", "vitalsim.devices", ...])

Two namespaces, "bedside" and "station", joined by a veth pair (10.213.0.1 and 10.213.0.2).
nftables in the station namespace drops the chosen fraction of the TCP and UDP packets arriving
from the bedside (``numgen random``: this kernel has no netem). Everything is torn down on exit,
always, even after an error; namespaces left by a process that died are removed on the next use.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path

from .live import RECORDED_HINT, capture_unavailable_reason

BEDSIDE_ADDR = "10.213.0.1"
STATION_ADDR = "10.213.0.2"
PREFIX = "vitalsim"
_NAME = re.compile(rf"^{PREFIX}-(\d+)-[0-9a-f]+-(bedside|station)$")


class NetnsUnavailable(RuntimeError):
    """The machine cannot do this (not root, or no nftables/iproute2)."""


def unavailable_reason() -> str | None:
    """Why kernel-level impairment (and a capture of it) cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return ("network namespaces and nftables need root (in CI, or with sudo on Linux); "
                f"without root, use {RECORDED_HINT}")
    reason = capture_unavailable_reason()
    if reason is not None:
        return reason
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            return (f"'{tool}' is not installed (apt-get install {package}); meanwhile, "
                    f"use {RECORDED_HINT}")
    return None


def _sh(*argv: str, stdin: str | None = None) -> None:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise NetnsUnavailable(f"{' '.join(argv)} failed: {done.stderr.strip()}")


def remove_stale() -> list[str]:
    """Delete namespaces this module made for processes that no longer exist."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30)
    removed = []
    for line in listed.stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        match = _NAME.match(name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
            removed.append(name)
    return removed


class Namespaces:
    """The bedside and station namespaces, with ``loss`` (0..1) dropped towards the station."""

    def __init__(self, loss: float = 0.0) -> None:
        if not 0.0 <= loss < 1.0:
            raise ValueError(f"loss={loss!r}: expected a fraction 0 <= loss < 1")
        self.loss = loss
        tag = f"{os.getpid()}-{secrets.token_hex(3)}"
        self.names = {side: f"{PREFIX}-{tag}-{side}" for side in ("bedside", "station")}
        short = secrets.token_hex(3)
        self.veth = {"bedside": f"vsb{short}", "station": f"vss{short}"}  # <= 15 characters
        self.addresses = {"bedside": BEDSIDE_ADDR, "station": STATION_ADDR}
        self._procs: list[subprocess.Popen] = []
        self._up = False

    def __enter__(self) -> Namespaces:
        reason = unavailable_reason()
        if reason:
            raise NetnsUnavailable(reason)
        remove_stale()
        try:
            for name in self.names.values():
                _sh("ip", "netns", "add", name)
            self._up = True
            b, s = self.veth["bedside"], self.veth["station"]
            _sh("ip", "link", "add", b, "type", "veth", "peer", "name", s)
            for side in ("bedside", "station"):
                ns, dev = self.names[side], self.veth[side]
                _sh("ip", "link", "set", dev, "netns", ns)
                _sh("ip", "-n", ns, "addr", "add", f"{self.addresses[side]}/24", "dev", dev)
                _sh("ip", "-n", ns, "link", "set", dev, "up")
                _sh("ip", "-n", ns, "link", "set", "lo", "up")
            self.set_loss(self.loss)
        except BaseException:
            self.close()
            raise
        return self

    def set_loss(self, loss: float) -> None:
        """Change the drop rate (fraction of packets from the bedside) while it runs."""
        per_mille = round(loss * 1000)
        rules = (f"table inet vitalsim_impair {{\n"
                 f"  chain input {{\n"
                 f"    type filter hook input priority 0; policy accept;\n"
                 f'    iifname "{self.veth["station"]}" meta l4proto {{ tcp, udp }} '
                 f"numgen random mod 1000 < {per_mille} drop\n"
                 f"  }}\n}}\n")
        ns = self.names["station"]
        subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet",
                        "vitalsim_impair"], capture_output=True, timeout=30)
        _sh("ip", "netns", "exec", ns, "nft", "-f", "-", stdin=rules)
        self.loss = loss

    def run(self, side: str, argv: list[str], **popen: object) -> subprocess.Popen:
        """Start a command inside one namespace; it is stopped when the namespaces go."""
        if side not in self.names:
            raise ValueError(f"side={side!r}; expected 'bedside' or 'station'")
        proc = subprocess.Popen(["ip", "netns", "exec", self.names[side], *argv], **popen)
        self._procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        self._procs.clear()
        if self._up:
            for name in self.names.values():
                subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
            self._up = False

    def __exit__(self, *exc: object) -> None:
        self.close()
