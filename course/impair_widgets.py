"""Sliders for a running impairment proxy, for a notebook: turn the network bad and watch.

The sliders and the proxies' settings follow each other: a slider moved in the page changes the
proxy, and ``system.udp_proxy.settings.loss = 0.2`` in a cell moves the slider.
"""

from __future__ import annotations

import math

import ipywidgets as widgets

from vitalsim.impair.model import Watched
from vitalsim.impair.proxy import TcpImpairmentProxy, UdpImpairmentProxy

# (field, label, min, max, step, scale shown to the learner)
UDP_SLIDERS = (
    ("loss", "loss %", 0.0, 50.0, 0.5, 100.0),
    ("burst", "burst (0 = independent)", 0.0, 10.0, 0.5, 1.0),
    ("delay", "delay ms", 0.0, 500.0, 5.0, 1000.0),
    ("jitter", "jitter ms", 0.0, 200.0, 1.0, 1000.0),
    ("duplicate", "duplicate %", 0.0, 20.0, 0.5, 100.0),
    ("reorder", "reorder %", 0.0, 20.0, 0.5, 100.0),
)
TCP_SLIDERS = (
    ("latency", "latency ms", 0.0, 1000.0, 10.0, 1000.0),
    ("bandwidth", "bandwidth B/s (0 = no limit)", 0.0, 100_000.0, 1000.0, 1.0),
)


def _slider(settings: Watched, name: str, label: str, lo: float, hi: float, step: float,
            scale: float) -> widgets.FloatSlider:
    """A slider bound both ways to one field: moving it changes the setting, and a setting
    changed by code moves it (the settings announce their changes)."""
    shown = getattr(settings, name) * scale
    slider = widgets.FloatSlider(value=shown, min=min(lo, shown), max=max(hi, shown), step=step,
                                 description=label, continuous_update=False,
                                 style={"description_width": "14em"},
                                 layout=widgets.Layout(width="32em"))

    def from_page(change: dict) -> None:
        value = change["new"] / scale
        # the slider moved because code changed the setting: writing it back would only add
        # rounding (0.2 * 100 / 100 is not always 0.2)
        if not math.isclose(getattr(settings, name), value, rel_tol=1e-9, abs_tol=1e-12):
            setattr(settings, name, value)

    def from_code(field: str, value: object) -> None:
        if field != name or not isinstance(value, int | float):
            return
        shown = value * scale
        # a value beyond the slider's range widens it: clamping would write the clamped
        # value back and undo what the code asked for
        slider.max = max(slider.max, shown)
        slider.min = min(slider.min, shown)
        if not math.isclose(slider.value, shown, rel_tol=1e-9, abs_tol=1e-12):
            slider.value = shown

    slider.observe(from_page, names="value")
    settings.watch(from_code)
    return slider


def _toggle(settings: Watched, name: str, label: str) -> widgets.ToggleButton:
    """A toggle bound both ways to one boolean field, as :func:`_slider` is to a number."""
    toggle = widgets.ToggleButton(value=bool(getattr(settings, name)), description=label)
    toggle.observe(lambda change: setattr(settings, name, change["new"]), names="value")

    def from_code(field: str, value: object) -> None:
        if field == name:
            toggle.value = bool(value)

    settings.watch(from_code)
    return toggle


def controls(udp: UdpImpairmentProxy | None = None,
             tcp: TcpImpairmentProxy | None = None) -> widgets.Widget:
    """A panel of sliders bound both ways to the proxies' settings, with the proxies' counters.

    The bindings last as long as the proxies' settings (each system makes new ones), so a cell
    run again adds a panel that follows the same settings as the first.
    """
    rows: list[widgets.Widget] = []
    counters = widgets.HTML()

    def refresh(_: object = None) -> None:
        parts = []
        if udp is not None:
            parts.append("UDP " + ", ".join(f"{k} {v}" for k, v in udp.counters.items()))
        if tcp is not None:
            parts.append("TCP " + ", ".join(f"{k} {v}" for k, v in tcp.counters.items()))
        counters.value = "<br>".join(parts)  # numbers only: nothing from the network

    if udp is not None:
        rows.append(widgets.HTML("<b>UDP telemetry</b>"))
        rows += [_slider(udp.settings, *spec) for spec in UDP_SLIDERS]
    if tcp is not None:
        rows.append(widgets.HTML("<b>TCP alarm channel</b>"))
        rows += [_slider(tcp.settings, *spec) for spec in TCP_SLIDERS]
        stall = _toggle(tcp.settings, "stall", "stall")
        reset = widgets.Button(description="reset connections", button_style="warning")
        reset.on_click(lambda _: (tcp.reset_connections(), refresh()))
        rows.append(widgets.HBox([stall, reset]))
    show = widgets.Button(description="refresh counters")
    show.on_click(refresh)
    refresh()
    return widgets.VBox([*rows, widgets.HBox([show]), counters])
