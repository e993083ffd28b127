"""Dashboard sessions in a real Chromium: the dashboard logs in with the station's token URL
and goes live, acknowledging as the logged-in nurse; a page from another origin (another port
of 127.0.0.1, the same *site*, so SameSite does not hold the cookie back) cannot open the
WebSocket, cannot read the API, and acknowledges nothing."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from server.config import StationConfig
from server.sessions import Operator
from server.system import SystemConfig
from tests.browser import BackgroundSystem, wait_for_tiles_updating
from vitalsim.alarms import Limit
from vitalsim.devices import WardConfig

pytestmark = pytest.mark.browser

NURSE = Operator("amy", "nurse", "n" * 48)


class EvilPage(BaseHTTPRequestHandler):
    """A page on another origin that tries to use the station the browser is logged in to."""

    station_url = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        ws = self.station_url.replace("http", "ws") + "ws"
        body = f"""<!doctype html><title>evil</title><script>
        window.result = {{ws: "pending", api: "pending"}};
        const ws = new WebSocket({ws!r});
        ws.onopen = () => {{ window.result.ws = "open";
          ws.send(JSON.stringify({{type: "ack", alarm_id: "x", user: "Dr. House"}})); }};
        ws.onerror = () => {{ window.result.ws = "refused"; }};
        fetch({self.station_url + "api/beds"!r}, {{credentials: "include"}})
          .then(r => {{ window.result.api = "status " + r.status; }})
          .catch(() => {{ window.result.api = "refused"; }});
        </script>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_the_dashboard_logs_in_with_the_token_url_and_another_origin_cannot_act(chromium):
    tight = (Limit("hr", 20, 30, "high", delay=2.0),)  # every adult breaches it after 2 s
    config = SystemConfig(StationConfig(http_port=0, udp_port=0, tcp_port=0, operators=[NURSE]),
                          WardConfig(beds=2, scenario="stable_adult", waves=False, limits=tight))
    evil = ThreadingHTTPServer(("127.0.0.1", 0), EvilPage)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        with BackgroundSystem(config) as system:
            st = system.system.station
            context = chromium.new_context()
            page = context.new_page()
            page.goto(system.url)  # no token: refused, with the way in
            assert "token URL" in page.content()
            page.goto(system.system.login_url())
            assert "token=" not in page.url  # the redirect took the token out of the bar
            cookie = next(c for c in context.cookies() if c["name"] == "vitalsim_session")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
            wait_for_tiles_updating(page, timeout_ms=15_000, beds=2)
            page.wait_for_function("() => document.querySelector('#user').value.startsWith('amy')",
                                   timeout=10_000)
            button = page.locator("#alarm-list li .actions button").first
            button.wait_for(timeout=15_000)
            button.click()
            page.wait_for_function(
                "() => [...document.querySelectorAll('#alarm-list li')].some("
                "li => li.textContent.includes('amy'))", timeout=10_000)
            async def acked_by() -> set:  # on the station's loop: the journal is its thread's
                return {e.acked_by for e in st.board.entries() if e.acked_by is not None}

            async def refusals() -> dict:
                return st.stats()["sessions"]["refused"]

            assert system.call(acked_by()) == {"amy"}
            # the same browser, logged in, opens a page from another origin
            EvilPage.station_url = system.url
            other = context.new_page()
            other.goto(f"http://127.0.0.1:{evil.server_address[1]}/")
            other.wait_for_function("() => window.result.ws !== 'pending' && "
                                    "window.result.api !== 'pending'", timeout=10_000)
            result = other.evaluate("window.result")
            assert result["ws"] == "refused", result
            # the API answers 403 to the foreign origin, and CORS keeps even that from the page
            assert result["api"] == "refused", result
            refused = system.call(refusals())
            assert refused.get("origin", 0) >= 2, refused
            assert system.call(acked_by()) == {"amy"}
            context.close()
    finally:
        evil.shutdown()
        evil.server_close()


def test_after_a_restart_the_page_says_its_session_ended_and_a_new_login_brings_it_back(chromium):
    """A restarted station knows no session from before: the page's WebSocket is refused (401)
    for ever, which a browser does not explain. The page must say so, not reconnect in silence."""
    from server.config import ward_devices
    from server.station import Station

    config = SystemConfig(StationConfig(http_port=0, udp_port=0, tcp_port=0, operators=[NURSE]),
                          WardConfig(beds=2, scenario="stable_adult", waves=False))
    with BackgroundSystem(config) as system:
        context = chromium.new_context()
        page = context.new_page()
        page.goto(system.system.login_url())
        wait_for_tiles_updating(page, timeout_ms=15_000, beds=2)
        station = system.system.station
        ports = dict(http_port=station.http_port, udp_port=station.udp_port,
                     tcp_port=station.tcp_port)
        system.call(station.stop())
        replacement = Station(StationConfig(**ports, devices=ward_devices(2),
                                            operators=[NURSE]))
        system.system.station = replacement
        system.call(replacement.start())
        page.wait_for_selector('body[data-session="ended"]', timeout=15_000)
        assert "session ended" in page.locator("#conn").text_content()
        page.goto(system.system.login_url())  # the new login link
        wait_for_tiles_updating(page, timeout_ms=15_000, beds=2)
        assert page.locator('body[data-session="ended"]').count() == 0
        context.close()
