"""tshark with the course's dissector, for the labs and the tests: a capture read the way
Wireshark reads it, beside scapy.

Every run loads the dissector with ``-X lua_script:`` and runs in an empty, temporary Wireshark
configuration (``HOME`` and ``WIRESHARK_CONFIG_DIR`` point into it), so that a learner's own
profiles, plugins or preferences cannot change what the lab shows, and the run leaves nothing
behind. By default the dissector is written afresh from the codec's tables
(:func:`vitalsim.wireshark.generate`), the same text as the committed ``wireshark/vitalsim.lua``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from vitalsim.wireshark import generate

#: what tshark prints on stderr that is no error: running as root, in a container or CI
_HARMLESS = ("Running as user", "This could be dangerous")


class TsharkError(RuntimeError):
    """tshark failed, or the dissector raised a Lua error: the message holds what it printed."""


def tshark_path() -> str | None:
    return shutil.which("tshark")


def unavailable_reason() -> str | None:
    """Why tshark cannot run here (``None``: it can)."""
    if tshark_path() is None:
        return "tshark is not installed (Debian/Ubuntu: apt-get install tshark)"
    return None


def run_tshark(capture: str | Path, args: list[str], *, dissector: Path | None = None,
               timeout: float = 60.0) -> str:
    """tshark ``-r capture`` with the dissector and ``args``; its standard output.

    Raises :class:`TsharkError` when tshark fails or prints a Lua error, never silently
    returns a capture read without the dissector."""
    path = tshark_path()
    if path is None:
        raise TsharkError(unavailable_reason())
    with tempfile.TemporaryDirectory(prefix="vitalsim-tshark-") as home:
        config = Path(home) / "wireshark"
        config.mkdir()
        if dissector is None:
            dissector = Path(home) / "vitalsim.lua"
            dissector.write_text(generate(), encoding="utf-8")
        env = {**os.environ, "HOME": home, "WIRESHARK_CONFIG_DIR": str(config),
               "XDG_CONFIG_HOME": home}
        done = subprocess.run(
            [path, "-n", "-r", str(capture), "-X", f"lua_script:{dissector}", *args],
            capture_output=True, text=True, env=env, timeout=timeout, check=False)
    problems = [line for line in done.stderr.splitlines()
                if line.strip() and not any(h in line for h in _HARMLESS)]
    if done.returncode != 0 or problems or "Lua Error" in done.stdout:
        raise TsharkError(f"tshark exited {done.returncode}: " + "\n".join(
            problems + [line for line in done.stdout.splitlines() if "Lua Error" in line]))
    return done.stdout


def tshark_lines(capture: str | Path, display_filter: str | None = None, *,
                 dissector: Path | None = None) -> list[str]:
    """tshark's one-line summary of each packet (those matching ``display_filter``): number,
    time, addresses, protocol, length and the dissector's Info column."""
    args = ["-Y", display_filter] if display_filter else []
    return [line.strip() for line in
            run_tshark(capture, args, dissector=dissector).splitlines() if line.strip()]


def tshark_fields(capture: str | Path, fields: list[str], display_filter: str | None = None, *,
                  dissector: Path | None = None) -> list[dict[str, list[str]]]:
    """For each packet (matching ``display_filter``), every value tshark shows for each of
    ``fields``, as strings in tshark's own format (a field that occurs several times in a
    packet, as a segment's several alarm frames, has several). ``frame.number`` is always
    there."""
    # the expert messages always, since a dissector's Lua error is one of them
    wanted = ["frame.number", *fields, *(["_ws.expert.message"]
                                         if "_ws.expert.message" not in fields else [])]
    args = ["-T", "json"]
    for field in wanted:
        args += ["-e", field]
    if display_filter:
        args += ["-Y", display_filter]
    out = run_tshark(capture, args, dissector=dissector)
    packets = [packet["_source"]["layers"] for packet in json.loads(out or "[]")]
    for packet in packets:
        errors = [m for m in packet.get("_ws.expert.message", []) if "Lua Error" in m]
        if errors:
            raise TsharkError(f"packet {packet['frame.number'][0]}: {errors[0]}")
        if "_ws.expert.message" not in fields:
            packet.pop("_ws.expert.message", None)
    return packets
