"""What a tile and its trends tell a nurse, in a real headless Chromium: nothing unmeasured looks
calm. The station is fed numerics by hand over UDP (as a bedside monitor sends them), so that
each test shows exactly the values it needs: VF with HR, SpO2 and BP not measurable, rhythms of
each kind, an arterial line, gaps in the history."""

from __future__ import annotations

import re
import time

import pytest

from server.config import StationConfig
from server.system import SystemConfig
from tests.browser import ARTIFACTS, TILE, BackgroundSystem, arrest_ward, open_page
from tests.station_client import Udp
from vitalsim.devices import WardConfig
from vitalsim.protocol import NumericsMessage
from vitalsim.protocol.telemetry import encode

pytestmark = pytest.mark.browser

# app.css's colours: --high, --medium, --ok
RED, YELLOW, GREEN = "rgb(255, 77, 77)", "rgb(255, 200, 61)", "rgb(94, 224, 122)"


def fed_station() -> SystemConfig:
    """A station with bed 1's device provisioned and no ward: the test is the monitor."""
    return SystemConfig(StationConfig(http_port=0, udp_port=0, tcp_port=0, devices={1001: 1},
                                      telemetry_timeout=60.0), WardConfig(beds=0))


class Monitor:
    """Bed 1's monitor, sending numerics one datagram at a time."""

    def __init__(self, system: BackgroundSystem) -> None:
        self.udp = Udp(system.system.station.udp_port)
        self.seq = 0

    def send(self, *, sent_at: float | None = None, **fields: object) -> None:
        values = {"hr": None, "spo2": None, "rr": None, "temp": None} | fields
        self.udp.send(encode(NumericsMessage(1001, 1, self.seq, sent_at or time.time(), 0,
                                             **values)))
        self.seq += 1

    def close(self) -> None:
        self.udp.close()


def wait_text(page, selector: str, needle: str, timeout: int = 10_000) -> str:
    page.wait_for_function(
        "([sel, want]) => { const el = document.querySelector(sel);"
        " return el !== null && el.textContent.includes(want); }",
        arg=[selector, needle], timeout=timeout)
    return page.locator(selector).text_content()


def style(page, selector: str, prop: str) -> str:
    return page.evaluate(
        "([sel, p]) => getComputedStyle(document.querySelector(sel))[p]", [selector, prop])


def test_vf_shows_news2_incomplete_not_green_names_the_assumptions_and_a_red_rhythm(chromium):
    with BackgroundSystem(fed_station()) as system:
        page, errors = open_page(chromium, system)
        monitor = Monitor(system)
        try:
            # VF: no pulse to count, no pleth, no cuff reading; the first numerics are scored
            monitor.send(rr=6.0, temp=36.9, rhythm="vf", abp_sys=18.0, abp_dia=14.0,
                         abp_map=15.0)
            news = f"{TILE} .news2"
            text = wait_text(page, news, "NEWS2")
            assert text.startswith("NEWS2 incomplete: HR, SpO2, BP not measured"), text
            assert page.get_attribute(news, "data-band") == "incomplete"
            assert "low" not in text and style(page, news, "color") != GREEN
            assumed = page.locator(f"{TILE} .news2-assumed")
            assert assumed.is_visible(), "what was assumed is on the tile, not only a tooltip"
            assert assumed.text_content() == "NEWS2 assumed air, alert (not entered)"
            rhythm = f"{TILE} .rhythm"
            assert wait_text(page, rhythm, "VF") == "VF"
            assert style(page, rhythm, "background-color") == RED
            page.screenshot(path=str(ARTIFACTS / "tile-vf.png"), clip=page.locator(
                TILE).bounding_box())
            # the trend panel's line on the latest set says the same
            page.locator(f"{TILE} .trend-btn").click()
            latest = wait_text(page, "#obs-latest", "NEWS2")
            assert latest.startswith("NEWS2 incomplete (HR, SpO2, BP not measured) at "), latest
            # AF, with a cuff reading: a complete set shows its score and band; AF is yellow
            monitor.send(hr=100.0, spo2=95.0, rr=18.0, temp=36.9, rhythm="af", nibp_sys=118.0,
                         nibp_dia=70.0, nibp_map=86.0, nibp_time=300.0)
            wait_text(page, rhythm, "AF")
            assert style(page, rhythm, "color") == YELLOW
            page.wait_for_function(
                "(sel) => document.querySelector(sel).dataset.band !== 'incomplete'",
                arg=news, timeout=10_000)
            text = page.locator(news).text_content()
            assert text.startswith("NEWS2 2 low · "), text  # pulse 100 and SpO2 95 score 1 each
            monitor.send(hr=80.0, spo2=97.0, rr=16.0, temp=36.9, rhythm="sinus",
                         nibp_sys=118.0, nibp_dia=70.0, nibp_map=86.0, nibp_time=300.0)
            wait_text(page, rhythm, "Sinus rhythm")
            assert style(page, rhythm, "color") == GREEN
        finally:
            monitor.close()
        assert errors == [], errors
        page.close()


@pytest.mark.parametrize("width", [1440, 1100])
def test_the_arterial_pressure_fits_its_tile(chromium, width):
    with BackgroundSystem(fed_station()) as system:
        page, errors = open_page(chromium, system)
        page.set_viewport_size({"width": width, "height": 1000})
        monitor = Monitor(system)
        try:
            # with capnography, as in vt_to_vf: EtCO2 takes the left cell, ABP the right one
            monitor.send(hr=80.0, spo2=97.0, rr=16.0, temp=36.9, rhythm="sinus", etco2=35.0,
                         abp_sys=120.0, abp_dia=69.0, abp_map=86.0, nibp_sys=118.0,
                         nibp_dia=70.0, nibp_map=86.0, nibp_time=300.0)
            value = f'{TILE} [data-field="abp"]'
            assert wait_text(page, value, "120/69 (86)") == "120/69 (86)"
            tile = page.locator(TILE).bounding_box()
            for part in (value, f"{TILE} .abp small", f'{TILE} [data-field="nibp"]'):
                box = page.locator(part).bounding_box()
                assert tile["x"] <= box["x"] and box["x"] + box["width"] <= tile["x"] + tile[
                    "width"], (width, part, box, tile)
            # and the text is not cut inside its own box either
            assert page.evaluate("(sel) => { const el = document.querySelector(sel);"
                                 " return el.scrollWidth <= el.clientWidth + 1; }",
                                 f"{TILE} .abp dd")
        finally:
            monitor.close()
        assert errors == [], errors
        page.close()


# the trend charts' data and axes, read from BokehJS's documents by the chart's title
CHARTS = """() => {
  const out = {};
  for (const doc of Bokeh.documents) for (const root of doc.roots()) {
    if (!root.title || !root.y_range) continue;
    const data = {};
    for (const r of root.renderers) {
      const d = r.data_source && r.data_source.data;
      if (!d) continue;
      for (const [k, v] of Object.entries(d)) if (k !== 't' && k !== 'colour')
        data[k] = Array.from(v, (x) => (Number.isNaN(x) ? 'gap' : x));
    }
    out[root.title.text] = { data, span: [root.y_range.start, root.y_range.end] };
  }
  return out;
}"""


def test_trends_draw_unmeasured_values_as_gaps_on_axes_of_a_minimum_span(chromium):
    with BackgroundSystem(fed_station()) as system:
        page, errors = open_page(chromium, system)
        monitor = Monitor(system)
        try:
            now = time.time()
            # VF first (nothing measured but RR and temperature), then a pulse and a cuff
            for i in range(8):
                vf = i < 4
                monitor.send(sent_at=now - 8 + i, hr=None if vf else 96.0,
                             spo2=None if vf else 93.0, rr=8.0 + i % 2,
                             temp=36.8 + 0.1 * (i % 2), rhythm="vf" if vf else "sinus",
                             nibp_sys=None if vf else 104.0, nibp_dia=None if vf else 62.0,
                             nibp_map=None if vf else 76.0, nibp_time=None if vf else 300.0)
            wait_text(page, f"{TILE} .rhythm", "Sinus rhythm")
            page.locator(f"{TILE} .trend-btn").click()
            page.wait_for_selector("#trend[data-marks]", timeout=15_000)
            page.wait_for_function(
                "() => Bokeh.documents.some((d) => d.roots().some((r) => r.title &&"
                " r.title.text === 'SpO2 %' && r.renderers.some((x) => x.data_source &&"
                " x.data_source.data.spo2 && x.data_source.data.spo2.length >= 8)))",
                timeout=15_000)
            charts = page.evaluate(CHARTS)
            # the latest set is complete: a score and its band
            latest = page.locator("#obs-latest").text_content()
            assert re.match(r"NEWS2 \d+ (low|low-medium|medium|high) at ", latest), latest
        finally:
            monitor.close()
        for title, field in (("HR /min", "hr"), ("SpO2 %", "spo2"), ("NIBP mmHg", "nibp_sys")):
            values = charts[title]["data"][field]
            assert 0 not in values, (title, values)
            assert values[:4] == ["gap"] * 4 and "gap" not in values[4:], (title, values)
        news = charts["NEWS2 (gaps: incomplete sets)"]["data"]["total"]
        assert news[0] == "gap" and news[-1] != "gap", news  # VF's set is incomplete
        for title, span in (("Temp °C", 2), ("HR /min", 40), ("SpO2 %", 10), ("RR /min", 10),
                            ("NIBP mmHg", 60)):
            lo, hi = charts[title]["span"]
            assert hi - lo >= span - 1e-9, (title, lo, hi)
        lo, hi = charts["Temp °C"]["span"]
        assert lo < 36.8 and hi > 36.9
        assert charts["SpO2 %"]["span"][1] <= 100
        assert errors == [], errors
        page.close()


def test_during_vf_the_tile_names_vf_not_the_apnoea_that_followed(chromium):
    # VF at 10 s, then APNOEA at about 11.6 s (arrest_ward()), newer than VF and as high: the
    # tile's headline must still name the arrest
    with BackgroundSystem(arrest_ward()) as system:
        page, errors = open_page(chromium, system)
        page.wait_for_selector('#alarm-list li[data-priority="high"]:has-text(": APNOEA")',
                               timeout=40_000)
        page.wait_for_selector('#alarm-list li[data-priority="high"]:has-text(": VF")',
                               timeout=10_000)
        label = page.locator(f"{TILE} .alarm-label").text_content()
        assert label.startswith("!!! VF"), label
        # EXTREME TACHY, raised in VT, stays while VF leaves HR unmeasurable, but its text
        # claims no heart rate now
        tachy = page.locator('#alarm-list li:has-text(": EXTREME TACHY") .value').text_content()
        assert re.fullmatch(r"HR not measured · raised at \d+ > 170 · worst \d+", tachy), tachy
        assert errors == [], errors
        page.close()
