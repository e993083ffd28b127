"""Optional TLS: HTTPS for the dashboard and TLS for the alarm channel, with a self-signed
certificate for the demo.

The device keys prove who speaks and the anti-replay window that nothing is said twice; neither
hides anything. TLS adds confidentiality (an eavesdropper no longer reads heart rates, alarms,
tokens or session cookies) and protects a TCP connection after its handshake from an attacker on
the path. The protocols above it do not change: the alarm channel's state machines still get
bytes in and give bytes out; only the I/O glue wraps its sockets (Tornado's ``ssl_options``,
asyncio's ``ssl=``). UDP telemetry stays in clear (it would need DTLS).

The certificate is made by the ``openssl`` command (the standard library reads certificates but
does not make them): a P-256 key and a certificate for 127.0.0.1 and localhost, valid 30 days.
A browser warns about it, since no authority signed it; the ward and the tests trust exactly it.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

from vitalsim.devices.ward import client_context as ward_client_context

CERT, KEY = "cert.pem", "key.pem"


class TlsError(RuntimeError):
    """No certificate could be made or loaded; the message says why and what to do."""


def self_signed(folder: str | Path, *, days: int = 30) -> tuple[Path, Path]:
    """``folder``/cert.pem and key.pem, made now unless both exist. The key is readable by
    its owner only."""
    folder = Path(folder)
    cert, key = folder / CERT, folder / KEY
    if cert.exists() and key.exists():
        return cert, key
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TlsError("making a self-signed certificate needs the openssl command; install "
                       "it, or give a certificate and key of your own")
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", str(days), "-subj", "/CN=vitalsim central station",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise TlsError(f"openssl could not make a certificate: {done.stderr.strip()[:400]}")
    key.chmod(0o600)
    return cert, key


def server_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """What the station's HTTPS and alarm listeners use: TLS 1.2 or newer."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"cannot load certificate {cert} / key {key}: {exc}") from None
    return context


def client_context(cafile: str | Path) -> ssl.SSLContext:
    """What a client of the station (a script, a test) uses: it trusts ``cafile`` alone, and
    checks the name; the devices' own is :func:`vitalsim.devices.ward.client_context`."""
    return ward_client_context(cafile)
