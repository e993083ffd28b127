"""The dashboard in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

The browser is never downloaded. Under CI=true a missing Chromium fails the test; on a laptop
without it the test skips and says why.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

import pytest

from server import Station
from server.config import StationConfig, ward_devices
from server.system import SystemConfig
from tests.browser import ARTIFACTS, BackgroundSystem
from vitalsim.alarms import Limit
from vitalsim.devices import WardConfig

pytestmark = pytest.mark.browser

def test_dashboard_tiles_update_and_an_alarm_appears(chromium):
    tight = (Limit("hr", 20, 30, "high", delay=3.0),)  # every adult breaches it after 3 s
    config = SystemConfig(StationConfig(http_port=0, udp_port=0, tcp_port=0),
                          WardConfig(beds=4, scenario="mix", waves=True, limits=tight))
    with BackgroundSystem(config) as system:
        page = chromium.new_page(viewport={"width": 1440, "height": 1000})
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
        high = page.locator('.tile[data-priority="high"]')
        assert high.count() >= 1
        # not by colour alone: the tile says it in words too
        assert high.first.locator(".alarm-label").text_content().startswith("!!! HR HIGH")
        assert high.first.locator(".alarm-label").get_attribute("aria-label").startswith(
            "high priority alarm: ")
        page.locator('.tile[data-bed="2"] .wave-toggle').click()
        page.locator('.tile[data-bed="3"] .trend-btn').click()
        page.wait_for_selector("#trend canvas", timeout=10_000)
        page.wait_for_function("document.querySelector('#net-beds').children.length === 4",
                               timeout=10_000)
        blank = canvas_pixels(page, 'canvas[data-bed="2"]')
        page.wait_for_function(  # the traces are being drawn before the picture is taken
            "([sel, blank]) => document.querySelector(sel).toDataURL() !== blank",
            arg=['canvas[data-bed="2"]', blank], timeout=10_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        host = urlparse(system.url).netloc
        assert requests and all(urlparse(u).netloc == host for u in requests), requests
        assert errors == [], errors
        page.close()
    assert os.path.getsize(ARTIFACTS / "dashboard.png") > 10_000


def canvas_pixels(page, selector: str) -> str:
    return page.evaluate(f"document.querySelector('{selector}').toDataURL()")


def test_waveforms_sweep_and_a_scenario_alarm_acknowledged_shows_on_a_second_page(chromium):
    # af_rvr goes into AF at 146/min 20 s after admission; at 10x that is 2 s from now, and
    # the HR HIGH alarm (medium: a limit alarm) follows after its 5 s (simulated) alarm delay,
    # beside the AFIB rhythm alarm
    config = SystemConfig(StationConfig(http_port=0, udp_port=0, tcp_port=0),
                          WardConfig(beds=2, scenario="af_rvr,stable_adult", waves=True,
                                     speed=10.0))
    with BackgroundSystem(config) as system:
        first, second = chromium.new_page(), chromium.new_page()
        for page in (first, second):
            page.goto(system.url)
            page.wait_for_selector("#conn.conn-connected", timeout=10_000)
        first.locator('.tile[data-bed="1"] .wave-toggle').click()
        first.wait_for_selector('canvas[data-bed="1"]', timeout=5_000)
        before = canvas_pixels(first, 'canvas[data-bed="1"]')
        first.wait_for_function(
            "([sel, before]) => document.querySelector(sel).toDataURL() !== before",
            arg=['canvas[data-bed="1"]', before], timeout=10_000)
        item = '#alarm-list li[data-state="active"][data-priority="medium"]:has-text("HR HIGH")'
        first.wait_for_selector(item, timeout=15_000)
        assert "Bed 1 · " in first.locator(item).first.text_content()
        assert "HR HIGH" in first.locator(item).first.text_content()
        alarm_id = first.locator(item).first.get_attribute("data-alarm-id")
        first.fill("#user", "Nurse Adaeze")
        first.locator(f'#alarm-list li[data-alarm-id="{alarm_id}"] button',
                      has_text="Acknowledge").click()
        acked = second.locator(f'#alarm-list li[data-alarm-id="{alarm_id}"] .state')
        second.wait_for_function(
            "([sel]) => { const el = document.querySelector(sel);"
            " return el && el.textContent.includes('acknowledged by Nurse Adaeze'); }",
            arg=[f'#alarm-list li[data-alarm-id="{alarm_id}"] .state'], timeout=10_000)
        assert "acknowledged by Nurse Adaeze" in acked.text_content()


def test_the_page_shows_a_station_restart_and_recovers_by_itself(chromium):
    config = SystemConfig(StationConfig(http_port=0, udp_port=0, tcp_port=0),
                          WardConfig(beds=2, scenario="stable_adult", waves=False))
    with BackgroundSystem(config) as system:
        page = chromium.new_page()
        page.goto(system.url)
        page.wait_for_selector("#conn.conn-connected", timeout=10_000)
        station = system.system.station
        ports = dict(http_port=station.http_port, udp_port=station.udp_port,
                     tcp_port=station.tcp_port)
        # locators, not wait_for_function: the page's CSP forbids the eval a polled string needs
        page.locator(".tile").nth(1).wait_for(timeout=10_000)
        system.call(station.stop())
        page.wait_for_selector("#conn.conn-disconnected", timeout=10_000)
        # the last values stay readable, but every tile says they are not current
        page.locator('.tile[data-offline="true"]').nth(1).wait_for(timeout=5_000)
        labels = page.locator(".tile .stale-label").all_text_contents()
        assert all(text.startswith("NO CONNECTION: last values") for text in labels), labels
        assert "not current (no connection)" in page.locator("#summary").text_content()
        # the same ward's devices, provisioned as the first station had them
        replacement = Station(StationConfig(**ports, devices=ward_devices(2)))
        system.system.station = replacement
        system.call(replacement.start())
        page.wait_for_selector("#conn.conn-connected", timeout=15_000)
        page.wait_for_function("document.querySelectorAll('.tile').length === 2",
                               timeout=10_000)
        page.locator('.tile[data-offline="false"]').nth(1).wait_for(timeout=10_000)
        assert page.locator(".tile .stale-label").all_text_contents() == ["", ""]


def test_the_page_shows_every_entry_of_a_grouped_alarms_message(chromium):
    """The ward's network goes: the station's check sends every bed's TELEMETRY LOST (and
    ALARM LINK LOST) as one ``alarms`` message, and the page lists each entry by its id."""
    # 2.5 s: well above the monitors' 1 s between numerics, so that only the ward's stop, not a
    # late datagram, raises TELEMETRY LOST
    config = SystemConfig(StationConfig(http_port=0, udp_port=0, tcp_port=0,
                                        telemetry_timeout=2.5),
                          WardConfig(beds=3, scenario="stable_adult", waves=False))
    with BackgroundSystem(config) as system:
        page = chromium.new_page()
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(system.url)
        page.wait_for_selector("#conn.conn-connected", timeout=10_000)
        page.locator(".tile").nth(2).wait_for(timeout=10_000)
        ward = system.system.ward
        system.call(ward.stop())
        station = system.system.station
        lost = page.locator('#alarm-list li:has-text("TELEMETRY LOST")')
        lost.nth(2).wait_for(timeout=15_000)
        ids = {lost.nth(i).get_attribute("data-alarm-id") for i in range(lost.count())}
        on_board = {e.alarm_id for e in station.board.entries()
                    if e.condition == "TELEMETRY LOST"}
        assert ids == on_board and len(ids) == 3
        assert errors == [], errors
        page.close()
