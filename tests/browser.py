"""What the browser tests share: Chromium's flags, where screenshots go, and a system on a thread.

Playwright's sync API drives the page from the test's thread, so the system under test runs on
its own event loop in a background thread (:class:`BackgroundSystem`).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from server import System
from server.config import StationConfig
from server.system import SystemConfig
from vitalsim.devices import WardConfig

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

    def __enter__(self) -> BackgroundSystem:
        self.thread.start()
        self.call(self.system.start())
        return self

    def call(self, coro, timeout: float = 30):
        """Run a coroutine on the system's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def url(self) -> str:
        return self.system.url

    def __exit__(self, *exc: object) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.system.stop(), self.loop).result(30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


def wait_for_tiles_updating(page, *, timeout_ms: int, beds: int | None = None) -> None:
    """The dashboard in ``page`` is connected, shows ``beds`` tiles (at least one if not
    given), and the first tile's heart rate changes to a new value: the vitals are live."""
    page.wait_for_selector("#conn.conn-connected", timeout=timeout_ms)
    # a function, not an expression: Playwright evaluates an expression with eval, which the
    # dashboard's Content-Security-Policy (script-src 'self') refuses
    page.wait_for_function(
        "(want) => { const n = document.querySelectorAll('.tile').length;"
        " return want === null ? n >= 1 : n === want; }",
        arg=beds, timeout=timeout_ms)
    field = '.tile [data-field="hr"]'
    first = page.locator(field).first.text_content()
    page.wait_for_function(
        """([sel, before]) => { const el = document.querySelector(sel);
             return el && el.textContent !== before && el.textContent !== '---'; }""",
        arg=[field, first], timeout=timeout_ms)


#: bed 1's tile on the dashboard
TILE = '.tile[data-bed="1"]'


def open_page(chromium, system: BackgroundSystem):
    """A dashboard page of ``system``, connected, and the list its console errors and uncaught
    exceptions go to (a test asserts it stays empty)."""
    page = chromium.new_page(viewport={"width": 1440, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(system.url)
    page.wait_for_selector("#conn.conn-connected", timeout=10_000)
    return page, errors


def arrest_ward() -> SystemConfig:
    """One bed of the vt_to_vf scenario (vitalsim/scenarios/vt_to_vf.toml) at 30x: VT at 3
    simulated minutes and VF at 5, that is 6 and 10 s from the start, APNOEA at about 11.6 s
    (349 simulated s)."""
    return SystemConfig(StationConfig(http_port=0, udp_port=0, tcp_port=0),
                        WardConfig(beds=1, scenario="vt_to_vf", waves=False, speed=30.0))
