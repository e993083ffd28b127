"""What a test needs from the machine: root, nftables, libpcap, Chromium, openssl, tshark.

On a learner's laptop a missing requirement skips the test and says why. Under CI=true it fails
the test instead: CI installs these things, so their absence there is a broken build, never a
quiet skip.
"""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def missing(reason: str) -> None:
    """Fail under CI=true, skip elsewhere; either way with the reason."""
    if in_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def require_root() -> None:
    if os.geteuid() != 0:
        missing("this test needs root (network namespaces, nftables, raw sockets)")


def require_nft() -> str:
    path = shutil.which("nft")
    if path is None:
        missing("this test needs nftables ('nft'); install it with: apt-get install nftables")
    return path  # type: ignore[return-value]


def require_chromium() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        missing(f"this test needs Debian's Chromium at {CHROMIUM}; "
                "install it with: apt-get install chromium")
    return CHROMIUM


def require_openssl() -> str:
    """The openssl command, which makes the demo's self-signed certificate (server/tls.py)."""
    path = shutil.which("openssl")
    if path is None:
        missing("this test needs the openssl command to make a certificate; install it with: "
                "apt-get install openssl")
    return path  # type: ignore[return-value]


def require_tshark() -> str:
    """tshark: Wireshark's own dissectors (HL7, MQTT) and the course's Lua dissector read the
    course's captures with it."""
    path = shutil.which("tshark")
    if path is None:
        missing("this test needs tshark; install it with: apt-get install tshark")
    return path  # type: ignore[return-value]


def require_capture() -> None:
    """Root and libpcap: what scapy needs to sniff with a filter."""
    from vitalsim.impair.live import capture_unavailable_reason

    reason = capture_unavailable_reason()
    if reason is not None:
        missing(f"this test captures packets, and {reason}")


def require_hub_proxy() -> str:
    """npm's configurable-http-proxy, which JupyterHub runs (Debian's does not start)."""
    from course.hub_harness import proxy_command

    path = proxy_command()
    if path is None:
        missing("this test needs configurable-http-proxy from npm: npm install --prefix "
                ".ci/node configurable-http-proxy@5.3.0 (.ci/run does it)")
    return path  # type: ignore[return-value]


def require_mosquitto() -> str:
    """Eclipse Mosquitto, the broker the MQTT tests and lab 08 start (course/mqtt_broker.py)."""
    from course.mqtt_broker import mosquitto_path, mosquitto_unavailable_reason

    reason = mosquitto_unavailable_reason()
    if reason is not None:
        missing(f"this test needs a real MQTT broker, and {reason}")
    return mosquitto_path()  # type: ignore[return-value]
