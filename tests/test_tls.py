"""Optional TLS: the dashboard over HTTPS and the alarm channel over TLS, with a self-signed
certificate made by openssl. The ward trusts exactly that certificate; a client that does not is
refused by its own TLS, and a plain-text client gets nothing from the TLS ports."""

import asyncio
import json
import ssl

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from server.system import System
from server.tls import client_context, self_signed
from tests.helpers import run, wait_until
from tests.requirements import require_openssl
from vitalsim.keys import KeyFile


@pytest.fixture
def cert(tmp_path):
    require_openssl()  # under CI=true its absence fails the test, never skips it
    return self_signed(tmp_path / "tls")


def test_a_self_signed_certificate_is_made_once_with_a_private_key(cert):
    crt, key = cert
    assert key.stat().st_mode & 0o777 == 0o600
    assert self_signed(crt.parent) == cert and crt.read_text().startswith("-----BEGIN CERT")


def test_the_ward_speaks_tls_to_the_alarm_channel_and_the_dashboard_is_https(cert):
    crt, key = cert

    async def main():
        async with System.ephemeral(beds=2, waves=False, tls_cert=crt, tls_key=key,
                                    device_keys=KeyFile.generate([1001, 1002]),
                                    require_auth=True) as system:
            st = system.station
            assert system.url.startswith("https://")
            await system.wait_ready()
            await wait_until(lambda: all(st.beds.beds[b].alarm_connected for b in (1, 2)),
                             what="both alarm links, over TLS and authenticated")
            resp = await AsyncHTTPClient().fetch(HTTPRequest(
                system.url + "healthz", ssl_options=client_context(crt)))
            assert json.loads(resp.body)["status"] == "ok"
            # a client that does not trust the certificate is stopped by its own TLS
            with pytest.raises(ssl.SSLCertVerificationError):
                await asyncio.open_connection("127.0.0.1", st.tcp_port,
                                              ssl=ssl.create_default_context())
            # plain text to the TLS alarm port: no frame ever comes back
            r, w = await asyncio.open_connection("127.0.0.1", st.tcp_port)
            w.write(b"\x00\x00\x00\x05\x01{}{}")
            try:
                answer = await asyncio.wait_for(r.read(65536), 10)
            except ConnectionResetError:
                answer = b""  # the TLS layer reset it: not a handshake
            assert answer == b""
            w.close()
            assert st.stats()["tcp"]["errors"] == {}
    run(main())


def test_a_tap_on_the_tcp_proxy_sees_tls_records_but_no_frame(cert):
    """What lab 06 shows an eavesdropper: the alarm channel's bytes through an on-path relay,
    TLS records (content type 23, application data) whose sizes it sees and whose frames it
    cannot read."""
    crt, key = cert

    async def main():
        async with System.ephemeral(beds=1, waves=False, impaired=True, tls_cert=crt,
                                    tls_key=key) as system:
            seen: list[tuple[str, bytes]] = []
            system.tcp_proxy.taps.append(lambda way, data: seen.append((way, data)))
            system.tcp_proxy.reset_connections()  # the device reconnects, through the tap
            await wait_until(lambda: any(d[:1] == b"\x17" for _, d in seen),
                             timeout=15, what="application data records at the tap")
            assert all(b"HELLO" not in d and b"device_id" not in d for _, d in seen)
            assert {way for way, _ in seen} == {"up", "down"}
    run(main())
