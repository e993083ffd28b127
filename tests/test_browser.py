"""The dashboard in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

The browser is never downloaded. Under CI=true a missing Chromium fails the test; on a laptop
without it the test skips and says why.
"""

import asyncio
import os
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

from server import System
from server.config import StationConfig
from server.system import SystemConfig
from tests.requirements import require_chromium
from vitalsim.alarms import Limit
from vitalsim.devices import WardConfig

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


class BackgroundSystem:
    """The whole system on its own event loop in a thread, so Playwright's sync API can drive
    the page from the test's thread."""

    def __init__(self, config: SystemConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.system = System(config)

    def __enter__(self) -> System:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.system.start(), self.loop).result(30)
        return self.system

    def __exit__(self, *exc: object) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.system.stop(), self.loop).result(30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@pytest.fixture
def chromium():
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def test_dashboard_tiles_update_and_an_alarm_appears(chromium):
    tight = (Limit("hr", 20, 30, "high", delay=3.0),)  # every adult breaches it after 3 s
    config = SystemConfig(StationConfig(http_port=0, udp_port=0, tcp_port=0),
                          WardConfig(beds=4, scenario="stable_adult", waves=False, limits=tight))
    with BackgroundSystem(config) as system:
        page = chromium.new_page()
        requests, errors = [], []
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(system.url)
        page.wait_for_selector("#conn.conn-connected", timeout=10_000)
        page.wait_for_function("document.querySelectorAll('.tile').length === 4", timeout=10_000)
        hr = page.locator('.tile[data-bed="1"] [data-field="hr"]')
        first = hr.text_content()
        page.wait_for_function(
            """([sel, before]) => {
                 const el = document.querySelector(sel);
                 return el && el.textContent !== before && el.textContent !== '---'; }""",
            arg=['.tile[data-bed="1"] [data-field="hr"]', first], timeout=15_000)
        alarm = page.locator('#alarm-list li[data-priority="high"]').first
        alarm.wait_for(timeout=15_000)
        assert "HR HIGH" in alarm.text_content()
        assert page.locator('.tile[data-priority="high"]').count() >= 1
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        host = urlparse(system.url).netloc
        assert requests and all(urlparse(u).netloc == host for u in requests), requests
        assert errors == [], errors
        page.close()
    assert os.path.getsize(ARTIFACTS / "dashboard.png") > 10_000
